#!/usr/bin/env bash
# debootstrap-image.sh IMAGE PACKAGES...
# Build a Debian bookworm root filesystem from Debian's packages alone and `docker import` it as
# IMAGE. This replaces pulling a base image when no container registry is reachable.
# The rootfs tarball is cached by (image, package list), so a re-import costs seconds.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
image=$1; shift
pkgs=$(printf '%s\n' "$@" | sort -u | paste -sd, -)
key=$(printf '%s %s' "$image" "$pkgs" | sha256sum | cut -c1-12)
tarball="$CACHE/rootfs/${image//[\/:]/_}-$key.tar"
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if docker image inspect "$image" >/dev/null 2>&1 \
   && [ "$(docker image inspect -f '{{index .Config.Labels "dev.workerlab.key"}}' "$image")" = "$key" ]; then
  step_cached "image $image" "docker"
  exit 0
fi
if [ ! -s "$tarball" ]; then
  step_miss "rootfs for $image" "debootstrap bookworm (+ ${pkgs//,/ }), ~1-2 min"
  command -v debootstrap >/dev/null || bash "$(dirname "$0")/host-deps.sh" debootstrap
  mkdir -p "$CACHE/rootfs"
  root=$(mktemp -d "$CACHE/rootfs/build.XXXXXX")
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase --include="$pkgs" bookworm "$root" "$mirror" \
    | grep --line-buffered -E '^I: (Retrieving|Validating|Installing|Configuring|Base system)' \
    | awk 'NR % 25 == 1 || /Base system/' >&2 || true
  [ -x "$root/bin/bash" ] || die "debootstrap of $image failed"
  # Trim what an image never needs: apt lists, docs, man pages, caches.
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
         "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/*
  tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
else
  step_cached "rootfs for $image" "$tarball"
fi
progress "docker import $image"
docker import --change "LABEL dev.workerlab.key=$key" --change 'CMD ["/bin/bash"]' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  "$tarball" "$image" >/dev/null
