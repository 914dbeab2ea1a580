#!/usr/bin/env bash
# Build the lab's own images (worker, operator) from wheels made on the host, so the Dockerfiles
# need no network. BASE_IMAGE defaults to python:3.11-slim when a registry answers, else to the
# debootstrap Python base. Skipped when the sources are unchanged since the last build.
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

# Everything that ends up in the images: the package sources, their metadata, the base.
source_key=$( { echo "$BASE_IMAGE $(docker image inspect -f '{{.Id}}' "$BASE_IMAGE")";
  git ls-files -co --exclude-standard pyproject.toml api worker operator common cli labs | sort | xargs sha256sum; } \
  | sha256sum | cut -c1-12)
up_to_date=true
for component in worker operator; do
  have=$(docker image inspect -f '{{index .Config.Labels "dev.workerlab.source"}}' "workerlab/$component:dev" 2>/dev/null || true)
  [ "$have" = "$source_key" ] || up_to_date=false
done
if $up_to_date; then
  step_cached "images workerlab/worker:dev, workerlab/operator:dev" "sources $source_key"
  exit 0
fi
step_miss "images workerlab/worker:dev, workerlab/operator:dev" "sources changed ($source_key)"
progress "building wheels into .build/wheels (pip's cache makes this quick when warm)"
rm -rf .build/wheels && mkdir -p .build/wheels
"$python" -m pip wheel -q --wheel-dir .build/wheels ".[worker,operator]"
for component in worker operator; do
  progress "docker build workerlab/$component:dev (FROM $BASE_IMAGE)"
  docker_build -q -f "$component/Dockerfile" --build-arg "BASE_IMAGE=$BASE_IMAGE" \
    --label "dev.workerlab.source=$source_key" -t "workerlab/$component:dev" .
done
