#!/usr/bin/env bash
# kwok (Kubernetes WithOut Kubelet): fakes nodes and moves pods through their lifecycle stages,
# for the scale benchmark (bench/scale/). Built from the Go module proxy, pinned, cached by version.
# Output: $CACHE/bin/kwok-$KWOK_VERSION (a second run is a no-op).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"

out="$CACHE/bin/kwok-$KWOK_VERSION"
if [ -x "$out" ]; then
  step_cached "kwok $KWOK_VERSION" "$out"
  exit 0
fi
step_miss "kwok $KWOK_VERSION" "go build sigs.k8s.io/kwok/cmd/kwok (cold: ~5 min on 2 idle cores)"
mkdir -p "$CACHE/bin"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# GOBIN install of the module at its tag: its go.mod has no replace directives.
GOBIN="$work" CGO_ENABLED=0 go install -trimpath -ldflags '-s -w' "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
mv "$work/kwok" "$out"
"$out" --version >&2 || true
