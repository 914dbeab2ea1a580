#!/usr/bin/env bash
# Remove the lab's kind cluster (images and caches stay, so the next `make up` is warm).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
# The e2e suite's multi-node cluster, in case an interrupted run left it behind.
if command -v kind >/dev/null && kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME-multi"; then
  kind delete cluster --name "$CLUSTER_NAME-multi"
fi
if command -v kind >/dev/null && kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
  kind delete cluster --name "$CLUSTER_NAME"
else
  progress "no cluster $CLUSTER_NAME: nothing to remove"
fi
