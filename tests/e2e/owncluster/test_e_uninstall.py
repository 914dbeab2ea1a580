"""The end of an install's life on the instructor's cluster (issue 22, item 6), last in the suite:

- the CRD upgrade step Helm does not do,
  `kubectl apply --server-side --force-conflicts -f charts/workerlab/crds/`, restores a CRD an
  older chart left behind;
- `helm uninstall` leaves no operator object behind (the node-heartbeat Role in
  kube-node-lease included); the CRDs stay, as Helm keeps them.
"""

from __future__ import annotations

import pytest
from support.paths import REPO

pytestmark = pytest.mark.e2e

INSTANCE = "app.kubernetes.io/instance=workerlab"


def test_the_crd_upgrade_step_restores_an_older_crd(own_cluster):
    crd = "crd/workerclusters.workerlab.dev"
    columns = own_cluster.get(crd)["spec"]["versions"][0]["additionalPrinterColumns"]
    # An older chart's CRD: one printer column fewer. `helm upgrade` would not touch it.
    own_cluster.kubectl(
        "patch", crd, "--type", "json",
        "-p", '[{"op": "remove", "path": "/spec/versions/0/additionalPrinterColumns/0"}]',
    )  # fmt: skip
    assert (
        len(own_cluster.get(crd)["spec"]["versions"][0]["additionalPrinterColumns"])
        == len(columns) - 1
    )
    # --force-conflicts: the fields are another manager's (helm's install, or here the patch).
    crds = str(REPO / "charts" / "workerlab" / "crds")
    own_cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", crds)
    assert own_cluster.get(crd)["spec"]["versions"][0]["additionalPrinterColumns"] == columns


def test_helm_uninstall_leaves_no_operator_object_but_keeps_the_crds(own_cluster):
    own_cluster.helm("uninstall", "workerlab", "-n", "workerlab-system", "--wait")
    kinds = (
        "deployments,services,serviceaccounts,configmaps,networkpolicies,roles,rolebindings,pods"
    )
    left = own_cluster.get(kinds, "-A", "-l", INSTANCE)["items"]
    left += own_cluster.get("clusterroles,clusterrolebindings", "-l", INSTANCE)["items"]
    left = [o for o in left if not o["metadata"].get("deletionTimestamp")]
    assert not left, [f"{o['kind']}/{o['metadata']['name']}" for o in left]
    for name in ("workerclusters.workerlab.dev", "clusterkopfpeerings.kopf.dev"):
        own_cluster.kubectl("get", "crd", name)
