#!/usr/bin/env bash
# Make sure a Docker engine is installed and answering. Installs Debian's docker.io when missing
# and starts dockerd in the background when no init system manages it (CI, containers, sandboxes).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

if ! command -v dockerd >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || die "docker is not installed; run: sudo apt-get install docker.io"
  progress "installing docker.io from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi
if docker info >/dev/null 2>&1; then
  step_cached "docker engine" "already running"
  exit 0
fi
[ "$(id -u)" = 0 ] || die "dockerd is not running; start it (sudo systemctl start docker) and retry"
progress "starting dockerd (log: /var/log/workerlab-dockerd.log)"
nohup dockerd >/var/log/workerlab-dockerd.log 2>&1 &
for _ in $(seq 60); do
  docker info >/dev/null 2>&1 && { progress "dockerd is up"; exit 0; }
  sleep 1
done
tail -20 /var/log/workerlab-dockerd.log >&2
die "dockerd did not answer within 60 s (log above)"
