#!/usr/bin/env bash
# Build the add-on images with no container registry, from Debian packages and the Go module proxy:
#   workerlab/redis:dev    Debian's redis-server, uid 10001, no persistence (manifests/addons/redis)
#   workerlab/nginx:dev    Debian's nginx, uid 10001, port 8080, everything writable under /tmp,
#                          upstream block regenerated from DNS (manifests/addons/nginx)
#   workerlab/traefik:dev  Traefik built from its Go module, FROM scratch (manifests/addons/ingress)
# Each image carries a label with the key of its inputs: an image with the right key is a cache
# hit; the Traefik binary is cached under $CACHE/addons keyed by its version.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
source "$here/lib.sh"

# v3.6.12 is the newest Traefik whose main module builds from the proxy alone: from v3.7.0 on,
# traefik's go.mod replaces github.com/traefik/traefik/dynamic/ext with the local path
# ./pkg/config/dynamic/ext, a nested module that is neither in the v3 module zip nor served by the
# proxy (`go list -m -versions github.com/traefik/traefik/dynamic/ext` -> 403 not available).
TRAEFIK_VERSION=${TRAEFIK_VERSION:-v3.6.12}
addons="$root/manifests/addons"
ctx_root=$(mktemp -d)
trap 'rm -rf "$ctx_root"' EXIT

# image_key IMAGE FILES...: a key over the build inputs, to compare with the image's label.
image_key() { { echo "$1"; shift; cat "$@"; } | sha256sum | cut -c1-12; }
have_image() { # IMAGE KEY
  docker image inspect "$1" >/dev/null 2>&1 \
    && [ "$(docker image inspect -f '{{index .Config.Labels "dev.workerlab.key"}}' "$1")" = "$2" ]
}

# 1. Traefik from its Go module. `go install github.com/traefik/traefik/v3/cmd/traefik@VERSION`
#    refuses modules with replace directives (traefik's go.mod points two dependencies at its
#    forks), so build inside a writable copy of the module: its own go.mod, go.sum and replaces
#    apply, and go.sum verifies every dependency as usual.
traefik_bin="$CACHE/addons/traefik-$TRAEFIK_VERSION"
if [ -x "$traefik_bin" ]; then
  step_cached "traefik $TRAEFIK_VERSION binary" "$traefik_bin"
else
  step_miss "traefik $TRAEFIK_VERSION binary" "go build from the module proxy (~10-20 min on 2 cores, once)"
  mkdir -p "$CACHE/addons"
  src=$(cd "$ctx_root" && GOFLAGS= go mod download -json "github.com/traefik/traefik/v3@$TRAEFIK_VERSION" \
    | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -d "$src" ] || die "go mod download github.com/traefik/traefik/v3@$TRAEFIK_VERSION failed"
  cp -r "$src" "$ctx_root/traefik" && chmod -R u+w "$ctx_root/traefik"
  pkg=github.com/traefik/traefik/v3/pkg/version
  (cd "$ctx_root/traefik" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath \
    -ldflags "-s -w -X $pkg.Version=$TRAEFIK_VERSION -X $pkg.Codename=workerlab -X $pkg.BuildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    -o "$traefik_bin.tmp" ./cmd/traefik)
  mv "$traefik_bin.tmp" "$traefik_bin"
fi
# 2. The Debian base shared by redis and nginx (one debootstrap, cached by its package list).
bash "$here/debootstrap-image.sh" workerlab/addons-base:bookworm redis-server nginx
base_id=$(docker image inspect -f '{{.Id}}' workerlab/addons-base:bookworm)

# 3. redis and nginx: a thin layer over the base (files in manifests/addons/*/image/).
for name in redis nginx; do
  image="workerlab/$name:dev"
  dir="$addons/$name/image"
  key=$(image_key "$image $base_id" $(find "$dir" -type f | sort))
  if have_image "$image" "$key"; then
    step_cached "image $image" "key $key"
    continue
  fi
  step_miss "image $image" "docker build FROM workerlab/addons-base:bookworm (seconds)"
  docker_build -q --label "dev.workerlab.key=$key" -t "$image" "$dir"
done

image=workerlab/traefik:dev
key=$(image_key "$image $TRAEFIK_VERSION" "$traefik_bin")
if have_image "$image" "$key"; then
  step_cached "image $image" "key $key"
else
  step_miss "image $image" "FROM scratch + traefik $TRAEFIK_VERSION"
  mkdir -p "$ctx_root/traefik-image"
  cp "$traefik_bin" "$ctx_root/traefik-image/traefik"
  cat >"$ctx_root/traefik-image/Dockerfile" <<'EOF'
FROM scratch
COPY traefik /traefik
USER 65532:65532
EXPOSE 8000 8080
ENTRYPOINT ["/traefik"]
EOF
  docker_build -q --label "dev.workerlab.key=$key" -t "$image" "$ctx_root/traefik-image"
fi
