# Shared settings and progress helpers for hack/*.sh. Sourced, never run.
# Caches live outside the repository so fresh clones reuse them and `git clean` never wipes them.
CACHE=${WORKERLAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/workerlab}
K8S_VERSION=${K8S_VERSION:-v1.34.4}
KIND_VERSION=${KIND_VERSION:-v0.30.0}
CRANE_VERSION=${CRANE_VERSION:-v0.22.1}  # the lab's registry (hack/registry.sh)
# The registry's container, on kind's network, and its port on the host (127.0.0.1 only); every
# kind node resolves localhost:$REGISTRY_PORT to it (kind's local-registry pattern).
REGISTRY_NAME=${REGISTRY_NAME:-workerlab-registry}
REGISTRY_PORT=${REGISTRY_PORT:-5001}
HELM_VERSION=${HELM_VERSION:-v4.3.2}  # charts/workerlab (hack/build-helm.sh)
ETCD_VERSION=v3.6.5  # what kubeadm $K8S_VERSION asks for (3.6.5-0); hack/toolchain/go.mod pins it
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}  # bench/scale: fake nodes (hack/build-kwok.sh)
CLUSTER_NAME=${CLUSTER_NAME:-workerlab}
export GOFLAGS=${GOFLAGS:--mod=mod}
export GOCACHE=${GOCACHE:-$CACHE/go-build}
export GOMODCACHE=${GOMODCACHE:-$CACHE/go-mod}
export PATH="$CACHE/bin:$CACHE/k8s/$K8S_VERSION/bin:$PATH"

_ts() { printf '%(%H:%M:%S)T' -1; }
progress() { printf '[%s] ==> %s\n' "$(_ts)" "$*" >&2; }
step_cached() { printf '[%s] [cache hit]  %s (%s)\n' "$(_ts)" "$1" "$2" >&2; }
step_miss() { printf '[%s] [cache miss] %s: %s\n' "$(_ts)" "$1" "$2" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# docker build, quiet: Debian's docker has no buildx, so every build prints a deprecation
# banner for the legacy builder. Show the output only when the build fails.
docker_build() {
  local log
  log=$(mktemp)
  if ! DOCKER_BUILDKIT=0 docker build "$@" >"$log" 2>&1; then
    grep -v -e '^DEPRECATED' -e '^ *BuildKit is' -e '^ *environment-variable' -e '^ *Install the buildx' -e 'docs.docker.com/go/buildx' "$log" >&2
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
}
