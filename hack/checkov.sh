#!/usr/bin/env bash
# Static checks of everything the lab deploys, with checkov (PyPI; the venv's dev extra):
#   - manifests/ as `kubectl apply -k` renders it (CRD, RBAC, operator) and each add-on;
#   - the objects the operator creates at run time (Pod, Service, Ingress, NetworkPolicy),
#     rendered from its templates for the sample WorkerCluster with both opt-ins enabled;
#   - the Dockerfiles (worker, operator, add-on images).
# Exceptions: .checkov.yaml (global, each justified) and `checkov.io/skipN` annotations on single
# resources. Exits non-zero on any finding. Offline: no API key, no download.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
source "$here/lib.sh"
cd "$root"
python=${PYTHON:-$root/.venv/bin/python}
checkov=${CHECKOV:-$root/.venv/bin/checkov}
[ -x "$checkov" ] || die "checkov not found at $checkov: pip install -e '.[dev]' into .venv"
command -v kubectl >/dev/null || bash "$here/build-k8s.sh"   # kubectl kustomize; cached, as in make up

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
progress "rendering manifests/ and manifests/addons/* with kubectl kustomize"
kubectl kustomize manifests >"$out/manifests.yaml"
for addon in manifests/addons/*/; do
  [ -f "$addon/kustomization.yaml" ] || continue
  kubectl kustomize "$addon" >"$out/addon-$(basename "$addon").yaml"
done
progress "rendering the operator's Pod, Service, Ingress and NetworkPolicy for manifests/samples/demo.yaml"
"$python" - "$out/operator-objects.yaml" <<'EOF'
import sys

import yaml
from workerlab.operator.model import WorkerCluster
from workerlab.operator.endpoints import build_ingress, build_network_policy, build_service
from workerlab.operator.templates import build_pod

body = yaml.safe_load(open("manifests/samples/demo.yaml"))
body["spec"]["ingress"] = {"enabled": True, "className": "traefik", "host": "demo.localtest.me"}
body["spec"]["networkPolicy"] = {"enabled": True}
cluster = WorkerCluster.from_body(body)
objects = [build_pod(cluster), build_service(cluster), build_ingress(cluster)]
objects.append(build_network_policy(cluster))
with open(sys.argv[1], "w") as out:
    yaml.safe_dump_all(objects, out, sort_keys=False)
EOF

progress "checkov: kubernetes (rendered) and Dockerfiles"
status=0
"$checkov" --config-file .checkov.yaml --framework kubernetes -d "$out" || status=1
dockerfiles=(worker/Dockerfile operator/Dockerfile manifests/addons/*/image/Dockerfile)
"$checkov" --config-file .checkov.yaml --framework dockerfile \
  $(printf -- '-f %s ' "${dockerfiles[@]}") || status=1
if [ "$status" = 0 ]; then
  progress "checkov: no findings beyond the justified exceptions (.checkov.yaml, checkov.io/skip annotations)"
fi
exit "$status"
