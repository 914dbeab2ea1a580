#!/usr/bin/env bash
# registry.sh start | connect CLUSTER | push IMAGE... | ref IMAGE
# The lab's container registry, built offline: go-containerregistry's `crane registry serve`
# (Go module proxy), FROM scratch, in the container $REGISTRY_NAME. Blobs live on disk under
# $CACHE/registry; crane keeps tags in memory, so `push` re-pushes a tag the registry lost when
# it restarted (the blobs are still there: only the manifest is sent again).
#   start            build crane and the registry image if needed, run the container
#                    (host side: 127.0.0.1:$REGISTRY_PORT only)
#   connect CLUSTER  kind's local-registry pattern: the container joins the `kind` network and
#                    each node's containerd resolves localhost:$REGISTRY_PORT to it
#   push IMAGE...    push local images (name:key labels, see hack/build-*images.sh) under an
#                    immutable tag VERSION-KEY and the moving version tag; prints the references
#   ref IMAGE        the immutable reference of a local image (nothing pushed)
#   refresh-moving CLUSTER REF...  drop the nodes' stale copies of the moving version tags
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
source "$here/lib.sh"

crane_bin=$CACHE/tools/crane-$CRANE_VERSION/crane
image=workerlab/registry:$CRANE_VERSION
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/pyproject.toml")

build_crane() {
  if [ -x "$crane_bin" ]; then
    step_cached "crane $CRANE_VERSION" "$crane_bin"
  else
    step_miss "crane $CRANE_VERSION" "go install github.com/google/go-containerregistry/cmd/crane (~1 min, once)"
    GOBIN=$(dirname "$crane_bin") CGO_ENABLED=0 GOFLAGS= go install -trimpath -ldflags "-s -w" \
      "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION"
  fi
  mkdir -p "$CACHE/bin"
  ln -sf "$crane_bin" "$CACHE/bin/crane"
}

build_image() {
  if docker image inspect "$image" >/dev/null 2>&1; then
    step_cached "image $image" "present"
    return 0
  fi
  step_miss "image $image" "FROM scratch + crane (seconds)"
  local ctx
  ctx=$(mktemp -d)
  cp "$crane_bin" "$ctx/crane"
  # uid 65532 owns the storage (chowned by start); /tmp for crane's uploads in progress.
  printf '%s\n' 'FROM scratch' 'COPY crane /crane' 'USER 65532:65532' 'EXPOSE 5000' \
    'ENTRYPOINT ["/crane", "registry", "serve", "--address", ":5000", "--disk", "/var/lib/registry"]' \
    >"$ctx/Dockerfile"
  docker_build -q --label "dev.workerlab.key=crane-$CRANE_VERSION" -t "$image" "$ctx"
  rm -rf "$ctx"
}

answering() { curl -fsS -m 3 -o /dev/null "http://127.0.0.1:$REGISTRY_PORT/v2/"; }

start() {
  build_crane
  build_image
  local state
  state=$(docker inspect -f '{{.State.Status}} {{.Config.Image}}' "$REGISTRY_NAME" 2>/dev/null || true)
  if [ -n "$state" ] && [ "${state#* }" != "$image" ]; then
    progress "registry $REGISTRY_NAME runs ${state#* }, not $image: replacing the container (blobs stay)"
    docker rm -f "$REGISTRY_NAME" >/dev/null
    state=
  fi
  case ${state%% *} in
    running) ;;
    paused) docker unpause "$REGISTRY_NAME" >/dev/null ;;
    exited | created) docker start "$REGISTRY_NAME" >/dev/null ;;
    "")
      mkdir -p "$CACHE/registry"
      chown 65532:65532 "$CACHE/registry"
      docker run -d --name "$REGISTRY_NAME" --restart unless-stopped \
        -p "127.0.0.1:$REGISTRY_PORT:5000" -v "$CACHE/registry:/var/lib/registry" \
        --label dev.workerlab.registry=1 "$image" >/dev/null
      ;;
    *) die "registry container $REGISTRY_NAME is ${state%% *}: docker rm -f $REGISTRY_NAME, then retry" ;;
  esac
  local deadline=$((SECONDS + 30))
  until answering; do
    [ $SECONDS -lt $deadline ] || die "registry $REGISTRY_NAME does not answer on 127.0.0.1:$REGISTRY_PORT: docker logs $REGISTRY_NAME"
    sleep 1
  done
  step_cached "registry $REGISTRY_NAME" "http://127.0.0.1:$REGISTRY_PORT, storage $CACHE/registry"
}

# containerd reads hosts.toml at every pull (no restart) once config_path is set; kind-config.yaml
# sets it for new clusters, and a node made before that gets it here (containerd restarts, the
# pods keep running: their shims are not its children).
connect() {
  local cluster=$1 node hosts
  if [ "$(docker inspect -f '{{json .NetworkSettings.Networks.kind}}' "$REGISTRY_NAME")" = null ]; then
    docker network connect kind "$REGISTRY_NAME"
  fi
  hosts="[host.\"http://$REGISTRY_NAME:5000\"]
  capabilities = [\"pull\", \"resolve\"]"
  for node in $(kind get nodes --name "$cluster"); do
    docker exec -i "$node" sh -c "mkdir -p '/etc/containerd/certs.d/localhost:$REGISTRY_PORT' \
      && cat > '/etc/containerd/certs.d/localhost:$REGISTRY_PORT/hosts.toml'" <<<"$hosts"
    if ! docker exec "$node" grep -q '^ *config_path *= *"/etc/containerd/certs.d"' /etc/containerd/config.toml; then
      progress "node $node: pointing containerd at /etc/containerd/certs.d (restarts containerd)"
      docker exec "$node" sh -c 'printf "\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n" >> /etc/containerd/config.toml && systemctl restart containerd'
    fi
  done
  # KEP-1755: tells tools which registry this cluster pulls from.
  kubectl --context "kind-$cluster" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: ConfigMap
metadata:
  name: local-registry-hosting
  namespace: kube-public
data:
  localRegistryHosting.v1: |
    host: "localhost:$REGISTRY_PORT"
    help: "https://kind.sigs.k8s.io/docs/user/local-registry/"
YAML
}

# The immutable tag: the lab's version and the key of the image's inputs (its label), so a tag
# is never pushed twice with different contents.
ref() {
  local key
  key=$(docker image inspect -f '{{or (index .Config.Labels "dev.workerlab.source") (index .Config.Labels "dev.workerlab.key")}}' "$1")
  [ -n "$key" ] && [ "$key" != "<no value>" ] || die "image $1 has no dev.workerlab.source/key label"
  local name=${1%%:*}
  echo "localhost:$REGISTRY_PORT/$name:$version-$key"
}

digest_of() { # REF: the digest the registry serves for it, or nothing
  local path=${1#localhost:"$REGISTRY_PORT"/}
  curl -fsS -m 5 -o /dev/null -D - -I \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://127.0.0.1:$REGISTRY_PORT/v2/${path%%:*}/manifests/${path##*:}" 2>/dev/null \
    | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: *//p' || true
}

# Pushes go through docker (it allows plain HTTP to 127.0.0.1); layers already there are skipped.
push_tag() { # LOCAL_IMAGE REF
  local log
  docker tag "$1" "$2"
  log=$(docker push "$2" 2>&1) || die "docker push $2 failed: $log"
}

push_one() {
  local local_image=$1 target alias have
  target=$(ref "$local_image")
  alias=${target%:*}:$version
  have=$(digest_of "$target")
  if [ -n "$have" ] && [ "$(digest_of "$alias")" = "$have" ]; then
    step_cached "registry $target" "present"
  else
    progress "docker push $target (and the version tag :$version)"
    [ -n "$have" ] || push_tag "$local_image" "$target"
    push_tag "$local_image" "$alias"
  fi
  # Earlier builds' local tags of this repository: untag them (the registry keeps its copies),
  # so that the dangling-image prune of `make up` can reclaim their layers.
  docker image ls --format '{{.Repository}}:{{.Tag}}' "${target%:*}" \
    | grep -vx -e "$target" -e "$alias" | xargs -r docker rmi >/dev/null 2>&1 || true
  echo "$target"
}

# A node keeps what it pulled under a tag (imagePullPolicy IfNotPresent): once `push` moved the
# version tag to a new build, the nodes' copies of the old one must go, or `kubectl apply -k
# manifests/` (lab 3, the tests) runs yesterday's worker. Drops each node's copy of the moving
# tag where it names another digest than the registry's; the next pod pulls the new one.
refresh_moving() {
  local cluster=$1 node ref moving want have
  shift
  for node in $(kind get nodes --name "$cluster"); do
    for ref in "$@"; do
      moving=${ref%:*}:$version
      want=$(digest_of "$moving")
      have=$(docker exec "$node" ctr -n k8s.io images ls "name==$moving" 2>/dev/null | awk 'NR == 2 {print $3}')
      if [ -n "$have" ] && [ "$have" != "$want" ]; then
        progress "node $node: forgetting its old copy of $moving (the tag now names a new build)"
        docker exec "$node" ctr -n k8s.io images rm "$moving" >/dev/null
      fi
    done
  done
}

case ${1:-} in
  start) start ;;
  refresh-moving)
    [ $# -ge 3 ] || die "usage: registry.sh refresh-moving CLUSTER REF..."
    shift
    refresh_moving "$@"
    ;;
  connect) [ $# -eq 2 ] || die "usage: registry.sh connect CLUSTER"; connect "$2" ;;
  push)
    shift
    for i in "$@"; do push_one "$i"; done
    ;;
  ref) ref "$2" ;;
  *) die "usage: registry.sh start | connect CLUSTER | push IMAGE... | ref IMAGE | refresh-moving CLUSTER REF..." ;;
esac
