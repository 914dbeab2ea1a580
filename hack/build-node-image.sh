#!/usr/bin/env bash
# Assemble a kind node image for Kubernetes $K8S_VERSION with no container registry, the way
# `kind build node-image` does it (run a base image, copy the binaries in, import the images
# kubeadm expects into the node's containerd, commit), but from Debian packages and Go modules
# only. Prints the image name on stdout. Cached by a key over every input.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
# stdout carries the image name alone (node-image.sh and up.sh capture it): everything else,
# including what the scripts called below print, goes to stderr.
exec 3>&1 1>&2

k8s_bin="$CACHE/k8s/$K8S_VERSION/bin"
etcd_version=$ETCD_VERSION
coredns_version=v1.12.1  # ... and CoreDNS v1.12.1
# etcd is built in hack/toolchain (cmd/etcd), whose go.mod must pin that version.
grep -q "^[[:space:]]*go.etcd.io/etcd/server/v3 $etcd_version\b" "$here/toolchain/go.mod" \
  || die "hack/toolchain/go.mod does not require go.etcd.io/etcd/server/v3 $etcd_version (kubeadm $K8S_VERSION's etcd)"

# Relative paths only: the same sources in another checkout must give the same key.
inputs_key=$( cd "$here" && { echo "$K8S_VERSION $etcd_version $coredns_version";
  find node toolchain/cmd toolchain/go.mod toolchain/go.sum -type f | sort | xargs sha256sum; } \
  | sha256sum | cut -c1-12)
node_image="workerlab/kind-node:$K8S_VERSION-$inputs_key"
if docker image inspect "$node_image" >/dev/null 2>&1; then
  step_cached "node image" "$node_image"
  echo "$node_image" >&3
  exit 0
fi
step_miss "node image" "assembling $node_image"

# Debootstrap is network- and disk-bound, the Go builds CPU-bound: run them side by side.
# Install it first, so the two background jobs do not race for apt's lock.
command -v debootstrap >/dev/null || bash "$here/host-deps.sh" debootstrap
bash "$here/debootstrap-image.sh" workerlab/kind-base:bookworm $(grep -v '^#' "$here/node/packages.txt") &
node_base=$!
bash "$here/debootstrap-image.sh" workerlab/debian-iptables:bookworm iptables conntrack kmod &
iptables_base=$!
bash "$here/build-k8s.sh"

# 1. The small Go programs the node runs besides Kubernetes itself, cached by version or source.
bin="$CACHE/node-bin"
mkdir -p "$bin"
src_key() { find "$@" -type f | sort | xargs cat | sha256sum | cut -c1-12; }
build_go() { # name, cache key, module dir, package
  local out="$bin/$1-$2"
  if [ ! -x "$out" ]; then
    progress "go build $1 ($2)"
    (cd "$3" && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$out.tmp" "$4") && mv "$out.tmp" "$out"
  fi
  cp "$out" "$ctx/bin/$1"
}
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/bin"
# In hack/toolchain, right after Kubernetes: the packages they share with it (grpc, etcd's client,
# OpenTelemetry) are build-cache hits. CoreDNS v1.12.1 stays a module of its own: its kubernetes
# plugin does not compile against the client-go Kubernetes $K8S_VERSION uses.
gomod="$here/toolchain/go.mod"
build_go pause "$(src_key "$here/toolchain/cmd/pause")" "$here/toolchain" ./cmd/pause
build_go workerlab-netd "$(src_key "$here/toolchain/cmd/workerlab-netd" "$gomod")" "$here/toolchain" ./cmd/workerlab-netd
build_go etcd "$etcd_version" "$here/toolchain" ./cmd/etcd
if [ ! -x "$bin/coredns-$coredns_version" ]; then  # a plain module: go install works as published
  progress "go install coredns $coredns_version"
  GOBIN="$ctx/gobin" CGO_ENABLED=0 go install -trimpath -ldflags '-s -w' "github.com/coredns/coredns@$coredns_version"
  mv "$ctx/gobin/coredns" "$bin/coredns-$coredns_version"
fi
cp "$bin/coredns-$coredns_version" "$ctx/bin/coredns"

# 2. Base root filesystems, from Debian packages (started above).
wait "$node_base" || die "building the node base image failed"
wait "$iptables_base" || die "building the iptables base image failed"

# 3. The images kubeadm (and the CNI manifest) will ask for, under exactly those names.
image() { # name, base, binary, entrypoint-json
  local dir="$ctx/$(basename "${1%%:*}")"
  mkdir -p "$dir"
  cp "$3" "$dir/"
  printf 'FROM %s\nCOPY %s /usr/local/bin/\nENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n%s\n' \
    "$2" "$(basename "$3")" "${4:+ENTRYPOINT $4}" >"$dir/Dockerfile"
  docker_build -q -t "$1" "$dir"
  echo "$1"
}
progress "building the control-plane, DNS, proxy, CNI and sandbox images"
images=(
  "$(image "registry.k8s.io/kube-apiserver:$K8S_VERSION" scratch "$k8s_bin/kube-apiserver")"
  "$(image "registry.k8s.io/kube-controller-manager:$K8S_VERSION" scratch "$k8s_bin/kube-controller-manager")"
  "$(image "registry.k8s.io/kube-scheduler:$K8S_VERSION" scratch "$k8s_bin/kube-scheduler")"
  "$(image "registry.k8s.io/kube-proxy:$K8S_VERSION" workerlab/debian-iptables:bookworm "$k8s_bin/kube-proxy")"
  "$(image "registry.k8s.io/etcd:${etcd_version#v}-0" scratch "$ctx/bin/etcd")"
  "$(image "registry.k8s.io/coredns/coredns:$coredns_version" scratch "$ctx/bin/coredns" '["/usr/local/bin/coredns"]')"
  "$(image "registry.k8s.io/pause:3.10.1" scratch "$ctx/bin/pause" '["/usr/local/bin/pause"]')"
  "$(image "docker.io/workerlab/netd:v1" workerlab/debian-iptables:bookworm "$ctx/bin/workerlab-netd" '["/usr/local/bin/workerlab-netd"]')"
)
expected=$("$k8s_bin/kubeadm" config images list --kubernetes-version "$K8S_VERSION" 2>/dev/null)
for want in $expected; do
  printf '%s\n' "${images[@]}" | grep -qx "$want" || die "kubeadm expects $want, which this script does not build"
done
docker save -o "$ctx/images.tar" "${images[@]}"

# 4. The node itself: base + our files + binaries + images, committed with systemd as init.
progress "assembling the node in a build container"
build=$(docker run -d --privileged --entrypoint=sleep workerlab/kind-base:bookworm infinity)
trap 'docker rm -f "$build" >/dev/null 2>&1; rm -rf "$ctx"' EXIT
tar -C "$here/node/files" --owner=0 --group=0 -cf - . | docker cp - "$build:/"
for b in kubeadm kubelet kubectl; do docker cp "$k8s_bin/$b" "$build:/usr/bin/$b"; done
docker cp "$ctx/images.tar" "$build:/kind/images.tar"
docker exec -i "$build" bash -euo pipefail -s "$K8S_VERSION" <<'SETUP'
version=$1
chown -R root:root /usr/local/bin/entrypoint /etc/systemd/system /kind
echo "$version" > /kind/version
mkdir -p /etc/kubernetes/manifests /opt/cni /etc/cni/net.d
ln -sfn /usr/lib/cni /opt/cni/bin
ln -sf "$(command -v systemd)" /sbin/init
# systemd in a container: start only what a node needs.
rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \
      /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \
      /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/* \
      /lib/systemd/system/sysinit.target.wants/systemd-tmpfiles-setup.service
echo "ReadKMsg=no" >> /etc/systemd/journald.conf
systemctl enable containerd.service kubelet.service >/dev/null 2>&1
systemctl mask systemd-binfmt.service getty.target console-getty.service >/dev/null 2>&1
# Import the images the way `kind build node-image` does: content only, pinned, unpacked on use.
containerd >/tmp/containerd.log 2>&1 &
for _ in $(seq 30); do [ -S /run/containerd/containerd.sock ] && break; sleep 1; done
ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned --all-platforms \
    --no-unpack --digests /kind/images.tar >/dev/null
ctr --namespace=k8s.io images list -q | grep -v -e '^sha256:' -e '@sha256:' | sed 's/^/  imported: /' >&2
pkill containerd; sleep 2
rm -f /kind/images.tar /tmp/containerd.log
SETUP
# docker 20.10's commit cannot set STOPSIGNAL, so the image config is finished by a build step.
docker commit "$build" "$node_image-rootfs" >/dev/null
printf '%s\n' "FROM $node_image-rootfs" 'ENV container=docker' 'STOPSIGNAL SIGRTMIN+3' \
  'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' 'CMD []' \
  "LABEL dev.workerlab.k8s-version=$K8S_VERSION" >"$ctx/Dockerfile.node"
docker_build -q -t "$node_image" -f "$ctx/Dockerfile.node" "$ctx/bin"
docker rmi "$node_image-rootfs" >/dev/null
# Older node images are ~1 GiB each: drop those no container uses any more.
for old in $(docker images workerlab/kind-node --format '{{.Repository}}:{{.Tag}}' | grep -vx "$node_image"); do
  docker rmi "$old" >/dev/null 2>&1 || true
done
progress "node image ready: $node_image ($(docker image inspect -f '{{.Size}}' "$node_image" | numfmt --to=iec))"
echo "$node_image" >&3
