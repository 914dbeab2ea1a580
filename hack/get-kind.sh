#!/usr/bin/env bash
# Put kind $KIND_VERSION on PATH: an existing matching `kind` wins, else `go install` (pure Go).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
if command -v kind >/dev/null && kind version 2>/dev/null | grep -q "kind $KIND_VERSION "; then
  step_cached "kind $KIND_VERSION" "$(command -v kind)"
  exit 0
fi
command -v go >/dev/null || die "kind is not installed and Go is missing: install kind $KIND_VERSION or Go >= 1.24"
step_miss "kind $KIND_VERSION" "go install sigs.k8s.io/kind@$KIND_VERSION (~20 s)"
mkdir -p "$CACHE/bin"
GOBIN="$CACHE/bin" CGO_ENABLED=0 go install "sigs.k8s.io/kind@$KIND_VERSION"
kind version
