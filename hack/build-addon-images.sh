#!/usr/bin/env bash
# build-addon-images.sh [redis] [nginx] [traefik] [metrics-server]        (default: all four)
# Build the add-on images with no container registry, from Debian packages and the Go module proxy:
#   workerlab/redis:dev    Debian's redis-server, uid 10001, no persistence (manifests/addons/redis)
#   workerlab/nginx:dev    Debian's nginx, uid 10001, port 8080, everything writable under /tmp,
#                          upstream block regenerated from DNS (manifests/addons/nginx)
#   workerlab/traefik:dev  Traefik built from its Go module, FROM scratch (manifests/addons/ingress)
#   workerlab/metrics-server:dev  the published registry.k8s.io image when a registry answers,
#                          else metrics-server built from its Go module, FROM scratch
#                          (manifests/addons/metrics-server)
# Each image carries a label with the key of its inputs: an image with the right key is a cache
# hit. The Traefik binary is cached under $CACHE/addons, keyed by its version; the Debian base by
# its package list (hack/debootstrap-image.sh); the metrics-server binary likewise, by version.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
source "$here/lib.sh"

# v3.6.12 is the newest Traefik whose main module builds from the proxy alone: from v3.7.0 on,
# traefik's go.mod replaces github.com/traefik/traefik/dynamic/ext with the local path
# ./pkg/config/dynamic/ext, a nested module that is neither in the v3 module zip nor served by the
# proxy (`go list -m -versions github.com/traefik/traefik/dynamic/ext` -> 403 not available).
TRAEFIK_VERSION=${TRAEFIK_VERSION:-v3.6.12}
# Pinned by hack/toolchain/go.mod, where it is built beside Kubernetes.
METRICS_SERVER_VERSION=$(awk '$1 == "sigs.k8s.io/metrics-server" {print $2}' "$here/toolchain/go.mod")
[ -n "$METRICS_SERVER_VERSION" ] || die "hack/toolchain/go.mod does not require sigs.k8s.io/metrics-server"
addons="$root/manifests/addons"
ctx_root=$(mktemp -d)
trap 'rm -rf "$ctx_root"' EXIT

# image_key IMAGE FILES...: a key over the build inputs, compared with the image's label.
image_key() { { echo "$1"; shift; cat "$@"; } | sha256sum | cut -c1-12; }
have_image() { # IMAGE KEY
  docker image inspect "$1" >/dev/null 2>&1 \
    && [ "$(docker image inspect -f '{{index .Config.Labels "dev.workerlab.key"}}' "$1")" = "$2" ]
}

# The Debian base shared by redis and nginx: one debootstrap (~1 min cold), cached by package list.
base_id=
debian_base() {
  [ -z "$base_id" ] || return 0
  bash "$here/debootstrap-image.sh" workerlab/addons-base:bookworm redis-server nginx
  base_id=$(docker image inspect -f '{{.Id}}' workerlab/addons-base:bookworm)
}

# workerlab/NAME:dev: a thin layer (manifests/addons/NAME/image/) over the Debian base.
build_debian_addon() {
  local name=$1 image=workerlab/$1:dev dir=$addons/$1/image key
  debian_base
  key=$(image_key "$image $base_id" $(find "$dir" -type f | sort))
  if have_image "$image" "$key"; then
    step_cached "image $image" "key $key"
    return 0
  fi
  step_miss "image $image" "docker build FROM workerlab/addons-base:bookworm (seconds)"
  docker_build -q --label "dev.workerlab.key=$key" -t "$image" "$dir"
}

# Traefik from its Go module. `go install github.com/traefik/traefik/v3/cmd/traefik@VERSION`
# refuses a module whose go.mod has replace directives (traefik points two dependencies at its
# forks), so build inside a writable copy of the downloaded module: its own go.mod, go.sum and
# replaces apply, and go.sum verifies every dependency as usual.
build_traefik() {
  local bin=$CACHE/addons/traefik-$TRAEFIK_VERSION image=workerlab/traefik:dev key src
  local pkg=github.com/traefik/traefik/v3/pkg/version
  if [ -x "$bin" ]; then
    step_cached "traefik $TRAEFIK_VERSION binary" "$bin"
  else
    step_miss "traefik $TRAEFIK_VERSION binary" "go build from the module proxy (~7 min on 2 idle cores, once)"
    mkdir -p "$CACHE/addons"
    src=$(cd "$ctx_root" && GOFLAGS= go mod download -json "github.com/traefik/traefik/v3@$TRAEFIK_VERSION" \
      | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    [ -d "$src" ] || die "go mod download github.com/traefik/traefik/v3@$TRAEFIK_VERSION failed"
    cp -r "$src" "$ctx_root/traefik" && chmod -R u+w "$ctx_root/traefik"
    (cd "$ctx_root/traefik" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath \
      -ldflags "-s -w -X $pkg.Version=$TRAEFIK_VERSION -X $pkg.Codename=workerlab -X $pkg.BuildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
      -o "$bin.tmp" ./cmd/traefik)
    mv "$bin.tmp" "$bin"
  fi
  key=$(image_key "$image $TRAEFIK_VERSION" "$bin")
  if have_image "$image" "$key"; then
    step_cached "image $image" "key $key"
    return 0
  fi
  step_miss "image $image" "FROM scratch + traefik $TRAEFIK_VERSION (seconds)"
  mkdir -p "$ctx_root/traefik-image"
  cp "$bin" "$ctx_root/traefik-image/traefik"
  printf '%s\n' 'FROM scratch' 'COPY traefik /traefik' 'USER 65532:65532' 'EXPOSE 8000 9000' \
    'ENTRYPOINT ["/traefik"]' >"$ctx_root/traefik-image/Dockerfile"
  docker_build -q --label "dev.workerlab.key=$key" -t "$image" "$ctx_root/traefik-image"
}

# metrics-server: the resource metrics API (kubectl top, the HPA's CPU utilisation, lab 11).
# Normal route: re-label the published image. Offline: built in hack/toolchain beside Kubernetes
# (go.sum verifies every module). The registry is probed only while neither the published
# image nor a built binary is here, so a warm offline run never waits on a registry.
build_metrics_server() {
  local bin=$CACHE/addons/metrics-server-$METRICS_SERVER_VERSION image=workerlab/metrics-server:dev
  local published=registry.k8s.io/metrics-server/metrics-server:$METRICS_SERVER_VERSION key from
  local pkg=k8s.io/client-go/pkg/version
  if docker image inspect "$published" >/dev/null 2>&1 || { [ "${WORKERLAB_OFFLINE:-}" != 1 ] \
      && [ ! -x "$bin" ] && progress "trying the published $published (WORKERLAB_OFFLINE=1 skips)" \
      && timeout 60 docker pull -q "$published" >/dev/null 2>&1; }; then
    key=$(image_key "$image $(docker image inspect -f '{{.Id}}' "$published")" /dev/null)
    from="FROM $published"
  else
    if [ -x "$bin" ]; then
      step_cached "metrics-server $METRICS_SERVER_VERSION binary" "$bin"
    else
      step_miss "metrics-server $METRICS_SERVER_VERSION binary" "go build in hack/toolchain (~20 s after the Kubernetes build, ~2.5 min alone)"
      mkdir -p "$CACHE/addons"
      # hack/toolchain requires it (tools.go): the same flags as build-k8s.sh's, so every k8s.io
      # package it shares with Kubernetes is a build-cache hit.
      (cd "$here/toolchain" && CGO_ENABLED=0 go build -trimpath -tags providerless \
        -ldflags "-s -w -X $pkg.gitVersion=$METRICS_SERVER_VERSION -X $pkg.gitTreeState=clean" \
        -o "$bin.tmp" sigs.k8s.io/metrics-server/cmd/metrics-server)
      mv "$bin.tmp" "$bin"
    fi
    key=$(image_key "$image $METRICS_SERVER_VERSION" "$bin")
    from="FROM scratch"
  fi
  if have_image "$image" "$key"; then
    step_cached "image $image" "key $key"
    return 0
  fi
  step_miss "image $image" "$from (seconds)"
  mkdir -p "$ctx_root/metrics-server-image"
  if [ "$from" = "FROM scratch" ]; then
    cp "$bin" "$ctx_root/metrics-server-image/metrics-server"
    # uid 65534 (nobody), as the published image; the manifest pins it too.
    printf '%s\n' 'FROM scratch' 'COPY metrics-server /metrics-server' 'USER 65534:65534' \
      'EXPOSE 10250' 'ENTRYPOINT ["/metrics-server"]' >"$ctx_root/metrics-server-image/Dockerfile"
  else
    printf '%s\n' "$from" >"$ctx_root/metrics-server-image/Dockerfile"
  fi
  docker_build -q --label "dev.workerlab.key=$key" -t "$image" "$ctx_root/metrics-server-image"
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(redis nginx traefik metrics-server)
for target in "${targets[@]}"; do
  case $target in
    redis | nginx) build_debian_addon "$target" ;;
    traefik) build_traefik ;;
    metrics-server) build_metrics_server ;;
    *) die "unknown add-on image: $target (redis, nginx, traefik, metrics-server)" ;;
  esac
done
