#!/usr/bin/env bash
# Side-load the lab's images into every node of the cluster (there is no registry to pull from).
# Two groups, one `kind load` each: kind skips a group whose images every node has, and saves a
# group's missing images in one archive, so the layers they share (python-base for the worker and
# the operator, addons-base for the add-ons) are copied once. The groups change at different
# paces: the app images at every code change, the add-ons almost never.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
load() {
  [ $# -gt 0 ] || return 0
  progress "kind load docker-image $*"
  kind load docker-image --name "$CLUSTER_NAME" "$@" >/dev/null
}
load workerlab/worker:dev workerlab/operator:dev
# shellcheck disable=SC2086 # a space-separated list of image names
load ${EXTRA_IMAGES:-}
