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

# build_in_background NAME SCRIPT ARGS...: steps that wait on the network and the disk (debootstrap,
# pip, docker build) run beside the CPU-bound Go builds below; their lines carry NAME.
background_pids=()
build_in_background() {
  local name=$1; shift
  # A session of its own, so that a failed or interrupted bring-up stops the whole job (docker
  # build, debootstrap and all) with one kill of its process group.
  setsid bash -c 'set -o pipefail; bash "$@" 2>&1 | sed -u "s/^/  ($0) /" >&2' "$name" "$@" &
  background_pids+=("$!")
}
wait_background_builds() {
  local pid
  for pid in "${background_pids[@]}"; do
    wait "$pid" || die "a background image build failed: its lines, marked (app images) or (add-on images), are above"
  done
  background_pids=()
}
stop_background_builds() {
  local pid
  for pid in "${background_pids[@]}"; do kill -- "-$pid" 2>/dev/null || true; done
}
trap stop_background_builds EXIT

# WORKERLAB_NODES (`make up NODES=3`, `workerlab up --nodes 3`): a new cluster's nodes, one control
# plane and the rest workers. Unset: whatever the running cluster has, else 1.
nodes=${WORKERLAB_NODES:-}
[ -z "$nodes" ] || [[ $nodes =~ ^[1-5]$ ]] \
  || die "NODES=$nodes: give a node count from 1 to 5 (one control plane, the rest workers)"
# kind_config: the base config (kind-config.yaml, or $KIND_CONFIG) with its worker nodes added.
kind_config() {
  local base=${KIND_CONFIG:-$here/kind-config.yaml} out=$CACHE/kind-config-${nodes:-1}-nodes.yaml i
  mkdir -p "$CACHE"
  { cat "$base"; for ((i = 1; i < ${nodes:-1}; i++)); do echo "  - role: worker"; done; } >"$out"
  echo "$out"
}

bash "$here/ensure-docker.sh"
bash "$here/get-kind.sh"
if [ -n "$nodes" ] && kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
  have=$(kind get nodes --name "$CLUSTER_NAME" 2>/dev/null | wc -l)
  [ "$have" -eq "$nodes" ] || die "cluster $CLUSTER_NAME has $have node(s), you asked for $nodes: it is kept as it is (recreating it would delete every WorkerCluster in it). To change it: make down, then make up NODES=$nodes"
fi
# Installed once here, so that no two debootstraps race for apt's lock.
command -v debootstrap >/dev/null || bash "$here/host-deps.sh" debootstrap
build_in_background "app images" "$here/build-images.sh"
build_in_background "add-on images" "$here/build-addon-images.sh" redis nginx
bash "$here/registry.sh" start
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
fi
# The remaining Go builds (cache hits when warm) run before a new cluster's control plane takes
# its share of the two cores; metrics-server right after Kubernetes, whose packages it reuses.
bash "$here/build-addon-images.sh" metrics-server traefik
bash "$here/build-helm.sh"
if ! kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
  step_miss "kind cluster $CLUSTER_NAME" "creating ${nodes:-1} node(s) from $node_image (~25 s, more with workers)"
  kind create cluster --name "$CLUSTER_NAME" --image "$node_image" \
    --config "$(kind_config)" --wait 180s
  bash "$here/build-k8s.sh"   # kubectl matching the server, even when the node image was pulled
fi
kubectl config use-context "kind-$CLUSTER_NAME" >/dev/null
bash "$here/registry.sh" connect "$CLUSTER_NAME"

wait_background_builds
# Every image the cluster runs comes from the registry under an immutable tag (VERSION-KEY).
app_images=(workerlab/operator:dev workerlab/worker:dev)
addon_images=(workerlab/redis:dev workerlab/nginx:dev workerlab/traefik:dev workerlab/metrics-server:dev)
mapfile -t refs < <(bash "$here/registry.sh" push "${app_images[@]}" "${addon_images[@]}")
[ ${#refs[@]} -eq 6 ] || die "registry.sh push printed ${#refs[@]} references, not 6"
bash "$here/registry.sh" refresh-moving "$CLUSTER_NAME" "${refs[@]}"
# Each rebuild leaves the previous image untagged ("dangling"); drop ours, which carry a
# dev.workerlab label (docker keeps any that a container still uses).
for label in dev.workerlab.key dev.workerlab.source; do
  docker image prune -f --filter "label=$label" >/dev/null || true
done

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
# The operator as an instructor installs it on their own cluster: the Helm chart, images from the
# registry. Helm installs CRDs only on a first install, so they are applied first (the upgrade step
# docs/install.md gives); --take-ownership adopts objects an earlier `kubectl apply -k` made, and
# --force-conflicts takes back the fields such an apply (lab 3's) changed since.
progress "installing the operator: helm upgrade --install workerlab charts/workerlab (images ${refs[0]##*:})"
kubectl apply -f "$root/manifests/operator/namespaces.yaml" >/dev/null
kubectl apply --server-side --force-conflicts -f "$root/charts/workerlab/crds/" >/dev/null
kubectl wait --for condition=established --timeout=60s crd/workerclusters.workerlab.dev >/dev/null
# With two workers or more, the master gets a standby on another node (issue 23): two replicas,
# one active by a Lease. One node: one replica, as on a laptop.
standby=()
if [ "$(kind get nodes --name "$CLUSTER_NAME" 2>/dev/null | wc -l)" -ge 3 ]; then
  standby=(--set operator.leaderElection=true --set operator.replicas=2)
  progress "two workers or more: the operator runs 2 replicas, one active, one standby (leaderElection)"
fi
helm upgrade --install workerlab "$root/charts/workerlab" --namespace workerlab-system \
  --take-ownership --force-conflicts -f "$root/charts/workerlab/ci/lab-values.yaml" \
  --set "operator.image.tag=${refs[0]##*:}" --set "worker.image.tag=${refs[1]##*:}" \
  "${standby[@]}" --wait --timeout 180s >/dev/null \
  || die "helm could not install the operator: helm -n workerlab-system status workerlab; kubectl -n workerlab-system describe deploy/workerlab-operator"

# The add-ons' manifests name the moving version tag (what `kubectl apply -k manifests/addons/X`
# in a lab pulls); bring-up pins each to its immutable tag through an overlay outside the repo.
progress "installing the add-ons: redis, the seed's nginx upstream, the Traefik ingress controller, metrics-server"
overlay=$CACHE/overlays/addons
mkdir -p "$overlay"
{
  echo "# Written by hack/up.sh: manifests/addons with each image pinned to its immutable tag."
  # kustomize takes a relative path only (a base outside the overlay is fine).
  echo "resources: [\"$(realpath --relative-to="$overlay" "$root/manifests/addons")\"]"
  echo "images:"
  for ref in "${refs[@]:2}"; do
    echo "  - {name: \"${ref%:*}\", newTag: \"${ref##*:}\"}"
  done
} >"$overlay/kustomization.yaml"
kubectl apply -k "$overlay" >/dev/null
for deployment in workerlab/redis workerlab/nginx workerlab-ingress/traefik workerlab-metrics/metrics-server; do
  kubectl -n "${deployment%/*}" rollout status "deployment/${deployment#*/}" --timeout=180s >/dev/null \
    || die "deployment ${deployment#*/} did not roll out: kubectl -n ${deployment%/*} describe deployment/${deployment#*/}"
done
wait_metrics_api
# WorkerClusters made under the old CRD carry its default spec.image, a side-loaded tag no node
# pulls: drop it, so that they run the operator's default from the registry.
kubectl get wc -A -o jsonpath='{range .items[?(@.spec.image=="workerlab/worker:dev")]}{.metadata.namespace}/{.metadata.name}{"\n"}{end}' \
  | while IFS=/ read -r ns name; do
    progress "wc/$name in $ns names the old side-loaded workerlab/worker:dev: using the operator's default image"
    kubectl -n "$ns" patch wc "$name" --type json \
      -p '[{"op":"remove","path":"/spec/image"},{"op":"remove","path":"/spec/imagePullPolicy"}]' >/dev/null
  done
progress "applying the sample WorkerCluster (manifests/samples/demo.yaml)"
kubectl apply -f "$root/manifests/samples/demo.yaml" >/dev/null
kubectl -n workerlab wait --for=condition=Ready wc/demo --timeout=180s >/dev/null \
  || die "wc/demo did not become Ready: kubectl -n workerlab describe wc demo"
kubectl -n workerlab get wc demo
cat <<MSG

The lab is up in $(( $(date +%s) - start )) s; its images come from the registry at localhost:$REGISTRY_PORT.
  kubectl get wc -A                  the WorkerClusters (master level)
  curl http://127.0.0.1:30080/       a worker pod's process answers (pod level), via the Service
  curl http://127.0.0.1:30082/       the same, via the seed's nginx upstream block
  workerlab lab list                 the course
  workerlab status demo              both levels at a glance
  make down                          remove the cluster
MSG
