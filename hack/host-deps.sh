#!/usr/bin/env bash
# host-deps.sh PACKAGE... : install the Debian packages that are missing (as root), or say how.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
missing=()
for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
[ "$(id -u)" = 0 ] || die "missing Debian packages: ${missing[*]} (sudo apt-get install ${missing[*]})"
progress "installing ${missing[*]} from Debian"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
