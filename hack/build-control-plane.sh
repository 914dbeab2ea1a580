#!/usr/bin/env bash
# The binaries the integration tests run as a control plane without nodes (kube-apiserver,
# kube-controller-manager, kubectl, etcd), from the same caches `make up` fills: no docker needed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"

bash "$here/build-k8s.sh"
etcd="$CACHE/node-bin/etcd-$ETCD_VERSION"  # the path build-node-image.sh reuses
if [ -x "$etcd" ]; then
  step_cached "etcd $ETCD_VERSION" "$etcd"
else
  step_miss "etcd $ETCD_VERSION" "go build (~2 min)"
  mkdir -p "$CACHE/node-bin"
  (cd "$here/toolchain" && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$etcd.tmp" ./cmd/etcd)
  mv "$etcd.tmp" "$etcd"
fi
