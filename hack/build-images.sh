#!/usr/bin/env bash
# Build the lab's own images (worker, operator) from wheels made on the host, so the Dockerfiles
# need no network. BASE_IMAGE defaults to the debootstrap Python base when no registry answers.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
source "$here/lib.sh"
cd "$root"
python=${PYTHON:-$root/.venv/bin/python}
[ -x "$python" ] || python=python3

if [ -z "${BASE_IMAGE:-}" ]; then
  if docker image inspect python:3.11-slim >/dev/null 2>&1 \
     || { [ "${WORKERLAB_OFFLINE:-}" != 1 ] && timeout 60 docker pull -q python:3.11-slim >/dev/null 2>&1; }; then
    BASE_IMAGE=python:3.11-slim
  else
    bash "$here/debootstrap-image.sh" workerlab/python-base:bookworm python3 python3-venv python3-pip ca-certificates
    BASE_IMAGE=workerlab/python-base:bookworm
  fi
fi
progress "building wheels into .build/wheels (pip cache makes this quick when warm)"
rm -rf .build/wheels && mkdir -p .build/wheels
"$python" -m pip wheel -q --wheel-dir .build/wheels ".[worker,operator]"
for component in worker operator; do
  progress "docker build workerlab/$component:dev (FROM $BASE_IMAGE)"
  docker_build -q -f "$component/Dockerfile" --build-arg "BASE_IMAGE=$BASE_IMAGE" \
    -t "workerlab/$component:dev" .
done
