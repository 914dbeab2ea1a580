#!/usr/bin/env bash
# Make sure a Docker engine is installed and answering. Installs Debian's docker.io when missing
# and starts dockerd in the background when no init system manages it (CI, containers, sandboxes).
#
# Where this machine's capability bounding set is short (sandboxed VMs), `docker run
# --privileged` (kind's nodes) fails with "unable to apply caps"; dockerd then runs with
# runc-capfilter as its default runtime (see hack/runc-capfilter/main.go).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"

if ! command -v dockerd >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || die "docker is not installed; run: sudo apt-get install docker.io"
  progress "installing docker.io from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi

dockerd_args=()
bounding=$(awk '/^CapBnd:/{print $2}' /proc/self/status)
full=$(printf '%x' $(( (1 << ($(cat /proc/sys/kernel/cap_last_cap) + 1)) - 1 )))
if [ "$((16#$bounding))" != "$((16#$full))" ]; then
  filter="$CACHE/bin/runc-capfilter"
  if [ ! -x "$filter" ]; then
    command -v go >/dev/null || die "this machine drops capabilities (CapBnd=$bounding) and Go is needed to build hack/runc-capfilter"
    progress "building runc-capfilter (capability bounding set $bounding is short of $full)"
    mkdir -p "$CACHE/bin"
    (cd "$here/runc-capfilter" && CGO_ENABLED=0 go build -o "$filter" .)
  fi
  dockerd_args=(--add-runtime "workerlab-runc=$filter" --default-runtime workerlab-runc)
fi

if docker info >/dev/null 2>&1; then
  if [ ${#dockerd_args[@]} -eq 0 ] || docker info -f '{{.DefaultRuntime}}' | grep -qx workerlab-runc; then
    step_cached "docker engine" "already running"
    exit 0
  fi
  systemctl is-active --quiet docker 2>/dev/null \
    && die "dockerd (systemd) needs runc-capfilter on this machine: add to /etc/docker/daemon.json {\"runtimes\":{\"workerlab-runc\":{\"path\":\"$CACHE/bin/runc-capfilter\"}},\"default-runtime\":\"workerlab-runc\"} and restart docker"
  progress "restarting dockerd with runc-capfilter as its default runtime"
  pkill -x dockerd || true
  for _ in $(seq 30); do pgrep -x dockerd >/dev/null || break; sleep 1; done
fi
[ "$(id -u)" = 0 ] || die "dockerd is not running; start it (sudo systemctl start docker) and retry"
progress "starting dockerd ${dockerd_args[*]} (log: /var/log/workerlab-dockerd.log)"
nohup dockerd "${dockerd_args[@]}" >/var/log/workerlab-dockerd.log 2>&1 &
for _ in $(seq 60); do
  docker info >/dev/null 2>&1 && { progress "dockerd is up"; exit 0; }
  sleep 1
done
tail -20 /var/log/workerlab-dockerd.log >&2
die "dockerd did not answer within 60 s (log above)"
