#!/usr/bin/env bash
# Print the kind node image to use: $WORKERLAB_NODE_IMAGE if set; else kind's published image
# when a registry answers (the normal route); else one assembled offline by build-node-image.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
if [ -n "${WORKERLAB_NODE_IMAGE:-}" ]; then
  echo "$WORKERLAB_NODE_IMAGE"; exit 0
fi
published="kindest/node:$K8S_VERSION"
if docker image inspect "$published" >/dev/null 2>&1; then
  step_cached "node image" "$published"; echo "$published"; exit 0
fi
if [ "${WORKERLAB_OFFLINE:-}" != 1 ]; then
  progress "trying the published node image $published (set WORKERLAB_OFFLINE=1 to skip)"
  if timeout 120 docker pull -q "$published" >/dev/null 2>&1; then
    echo "$published"; exit 0
  fi
  progress "no registry reachable: building the node image from Debian packages and Go modules"
fi
bash "$here/build-node-image.sh"
