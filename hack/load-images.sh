#!/usr/bin/env bash
# Side-load the lab's images into every node of the cluster (there is no registry to pull from).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
images=(workerlab/worker:dev workerlab/operator:dev ${EXTRA_IMAGES:-})
for image in "${images[@]}"; do
  progress "kind load docker-image $image"
  kind load docker-image --name "$CLUSTER_NAME" "$image" >/dev/null
done
