#!/usr/bin/env bash
# Build Kubernetes' node and control-plane binaries from the Go module proxy alone.
# Output: $CACHE/k8s/$K8S_VERSION/bin/{kubeadm,kubelet,kubectl,kube-apiserver,...}
# Cached by version; a second run is a no-op.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"

out="$CACHE/k8s/$K8S_VERSION/bin"
cmds=(kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy)
missing=()
for c in "${cmds[@]}"; do [ -x "$out/$c" ] || missing+=("$c"); done
if [ ${#missing[@]} -eq 0 ]; then
  step_cached "kubernetes $K8S_VERSION binaries" "$out"
  exit 0
fi
step_miss "kubernetes $K8S_VERSION binaries" "building ${missing[*]} (cold: ~7 min on 2 idle cores, more under load)"
mkdir -p "$out"
major=${K8S_VERSION#v}; major=${major%%.*}
minor=$(echo "$K8S_VERSION" | cut -d. -f2)
pkg=k8s.io/component-base/version
cgo_pkg=k8s.io/client-go/pkg/version
date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ld="-s -w"
for p in $pkg $cgo_pkg; do
  ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor"
  ld+=" -X $p.gitCommit=workerlab-offline -X $p.gitTreeState=clean -X $p.buildDate=$date"
done
cd "$here/toolchain"
# One `go build` for all of them: it links each binary (single-threaded) while it still compiles
# packages for the next, where one build per binary would leave a core idle at every link.
tmp=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
progress "go build ${missing[*]}"
CGO_ENABLED=0 go build -trimpath -tags providerless -ldflags "$ld" -o "$tmp/" \
  "${missing[@]/#/k8s.io/kubernetes/cmd/}"
for c in "${missing[@]}"; do mv "$tmp/$c" "$out/$c"; done
"$out/kubectl" version --client | head -1 >&2
