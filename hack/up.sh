#!/usr/bin/env bash
# Bring up the whole lab, idempotently: docker, kind, the node image, the cluster `workerlab`,
# the app images, the CRD + RBAC + operator, and the sample WorkerCluster.
# Each step says whether it was a cache hit or did real work.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
source "$here/lib.sh"
start=$(date +%s)

# After a reboot or a docker restart the node containers are stopped, not gone, or just being
# restarted by docker itself (kind's restart policy), or paused: starting, resuming or waiting
# for them (kind supports it) takes under a minute where a new cluster takes four. A cluster
# that does not answer within 2 minutes of starting is recreated.
start_existing_cluster() {
  local label="label=io.x-k8s.kind.cluster=$CLUSTER_NAME" stopped paused
  [ -n "$(docker ps -a --filter "$label" --format '{{.Names}}')" ] || return 1
  stopped=$(docker ps -a --filter "$label" --filter status=exited --filter status=created \
    --format '{{.Names}}')
  paused=$(docker ps -a --filter "$label" --filter status=paused --format '{{.Names}}')
  if [ -n "$paused" ]; then
    # `make bench-scale` pauses the lab for its run; killed, it could not resume it.
    progress "cluster $CLUSTER_NAME is paused: resuming its node containers ($(echo $paused))"
    # shellcheck disable=SC2086 # one name per word
    docker unpause $paused >/dev/null || return 1
  fi
  if [ -n "$stopped" ]; then
    progress "cluster $CLUSTER_NAME is stopped: starting its node containers ($(echo $stopped))"
    # shellcheck disable=SC2086 # one name per word
    docker start $stopped >/dev/null || return 1
  elif [ -z "$paused" ]; then
    progress "cluster $CLUSTER_NAME's nodes run but its API server does not answer yet: waiting (up to 2 min)"
  fi
  local deadline=$((SECONDS + 120))
  until kubectl --context "kind-$CLUSTER_NAME" get --raw=/readyz --request-timeout=5s \
    >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 3
  done
  # The API server answers before the node's kubelet has re-registered: wait for Ready nodes.
  kubectl --context "kind-$CLUSTER_NAME" wait --for=condition=Ready nodes --all --timeout=120s \
    >/dev/null 2>&1
}

bash "$here/ensure-docker.sh"
bash "$here/get-kind.sh"
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
  bash "$here/build-k8s.sh"   # kubectl matching the server
  if kubectl --context "kind-$CLUSTER_NAME" get --raw=/readyz --request-timeout=5s >/dev/null 2>&1; then
    step_cached "kind cluster $CLUSTER_NAME" "already running"
  elif start_existing_cluster; then
    step_cached "kind cluster $CLUSTER_NAME" "started again (its node containers were kept)"
  else
    progress "cluster $CLUSTER_NAME exists but its API server does not answer (half-created or stopped): recreating it"
    kind delete cluster --name "$CLUSTER_NAME"
  fi
fi
if ! kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
  for port in $(seq 30080 30089); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      die "port 127.0.0.1:$port is taken; the lab maps its Services there. Free it and retry."
    fi
  done
  node_image=$(bash "$here/node-image.sh")
  [[ $node_image =~ ^[^[:space:]]+$ ]] || die "node-image.sh printed '$node_image', not one image name"
  step_miss "kind cluster $CLUSTER_NAME" "creating from $node_image (~25 s)"
  kind create cluster --name "$CLUSTER_NAME" --image "$node_image" \
    --config "${KIND_CONFIG:-$here/kind-config.yaml}" --wait 180s
  bash "$here/build-k8s.sh"   # kubectl matching the server, even when the node image was pulled
fi
kubectl config use-context "kind-$CLUSTER_NAME" >/dev/null

bash "$here/build-images.sh"
bash "$here/build-addon-images.sh"
EXTRA_IMAGES="workerlab/redis:dev workerlab/nginx:dev workerlab/traefik:dev workerlab/metrics-server:dev" \
  bash "$here/load-images.sh"
# Each rebuild leaves the previous image untagged ("dangling"); drop ours, which carry a
# dev.workerlab label (docker keeps any that a container still uses).
for label in dev.workerlab.key dev.workerlab.source; do
  docker image prune -f --filter "label=$label" >/dev/null || true
done

# A rebuilt image keeps its :dev tag, so a running Deployment would keep the old one: stamp the
# image's ID on the pod template. A new ID rolls the Deployment; the same ID changes nothing.
stamp_image() { # NAMESPACE DEPLOYMENT IMAGE
  local id patch
  id=$(docker image inspect -f '{{.Id}}' "$3")
  patch="{\"spec\":{\"template\":{\"metadata\":{\"annotations\":{\"workerlab.dev/image-id\":\"${id#sha256:}\"}}}}}"
  kubectl -n "$1" patch deployment "$2" --type merge -p "$patch" >/dev/null
  kubectl -n "$1" rollout status "deployment/$2" --timeout=180s
}
# An unavailable aggregated API blocks every namespace deletion, so the lab is not up until
# metrics.k8s.io answers. A cluster created before kind-config.yaml routed the aggregator to
# endpoints may hold a pooled connection that escaped to the node's default route before
# kube-proxy programmed the ClusterIP (kind-config.yaml says why): drop such un-NATed flows once
# so the API server reconnects through the Service.
wait_metrics_api() {
  local api=apiservice/v1beta1.metrics.k8s.io ip node
  kubectl wait --for=condition=Available "$api" --timeout=90s >/dev/null 2>&1 && return 0
  ip=$(kubectl -n workerlab-metrics get service metrics-server -o jsonpath='{.spec.clusterIP}')
  progress "metrics.k8s.io is not Available yet; dropping un-NATed flows to $ip:443 on the nodes"
  for node in $(kind get nodes --name "$CLUSTER_NAME"); do
    docker exec "$node" conntrack -D -p tcp --orig-dst "$ip" --reply-src "$ip" >/dev/null 2>&1 || true
  done
  kubectl wait --for=condition=Available "$api" --timeout=120s >/dev/null \
    || die "metrics.k8s.io did not become Available: kubectl get $api -o yaml; kubectl -n workerlab-metrics logs deploy/metrics-server"
}
progress "installing CRD, RBAC and operator (kubectl apply -k manifests/)"
kubectl apply -k "$root/manifests" >/dev/null
kubectl wait --for condition=established --timeout=60s crd/workerclusters.workerlab.dev >/dev/null
stamp_image workerlab-system workerlab-operator workerlab/operator:dev
progress "installing the add-ons: redis, the seed's nginx upstream, the Traefik ingress controller, metrics-server"
kubectl apply -k "$root/manifests/addons" >/dev/null
stamp_image workerlab redis workerlab/redis:dev
stamp_image workerlab nginx workerlab/nginx:dev
stamp_image workerlab-ingress traefik workerlab/traefik:dev
stamp_image workerlab-metrics metrics-server workerlab/metrics-server:dev
wait_metrics_api
progress "applying the sample WorkerCluster (manifests/samples/demo.yaml)"
kubectl apply -f "$root/manifests/samples/demo.yaml" >/dev/null
kubectl -n workerlab wait --for=condition=Ready wc/demo --timeout=180s >/dev/null \
  || die "wc/demo did not become Ready: kubectl -n workerlab describe wc demo"
kubectl -n workerlab get wc demo
cat <<MSG

The lab is up in $(( $(date +%s) - start )) s.
  kubectl get wc -A                  the WorkerClusters (master level)
  curl http://127.0.0.1:30080/       a worker pod's process answers (pod level), via the Service
  curl http://127.0.0.1:30082/       the same, via the seed's nginx upstream block
  workerlab lab list                 the course
  workerlab status demo              both levels at a glance
  make down                          remove the cluster
MSG
