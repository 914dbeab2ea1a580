"""`workerlab status` names the HPA that owns a WorkerCluster's replica count (pure part)."""

from __future__ import annotations

import io

from rich.console import Console

from workerlab.api.objects import hpa_cpu_utilization, hpa_new_size, hpa_targets, scaled_direction
from workerlab.cli.status_view import render
from workerlab.common.errors import KubeError
from workerlab.common.views import ClusterView, autoscaler_view, list_hpas


def hpa(name="demo", target="demo", kind="WorkerCluster", api="workerlab.dev/v1alpha1", **extra):
    body = {
        "metadata": {"name": name, "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {
            "scaleTargetRef": {"apiVersion": api, "kind": kind, "name": target},
            "minReplicas": 2,
            "maxReplicas": 6,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 50},
                    },
                }
            ],
        },
        "status": {
            "currentMetrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "current": {"averageUtilization": 45}},
                }
            ]
        },
    }
    body.update(extra)
    return body


def test_only_an_hpa_on_this_workercluster_counts():
    assert hpa_targets(hpa(), "demo")
    assert not hpa_targets(hpa(target="other"), "demo")
    assert not hpa_targets(hpa(kind="Deployment", api="apps/v1"), "demo")
    assert not hpa_targets(hpa(api="example.com/v1"), "demo")
    assert autoscaler_view("demo", [hpa(target="other")]) is None


def test_view_line_names_the_hpa_and_its_cpu():
    view = autoscaler_view("demo", [hpa(target="other", name="x"), hpa()])
    assert view is not None
    assert view.describe() == "replicas owned by hpa/demo (min 2, max 6, cpu 45%/50%)"


def test_before_the_first_reading_and_v1_shape():
    fresh = hpa(status={})
    assert hpa_cpu_utilization(fresh) == (None, 50)
    assert autoscaler_view("demo", [fresh]).describe().endswith("cpu ?/50%)")
    v1 = {
        "metadata": {"name": "old"},
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "workerlab.dev/v1alpha1",
                "kind": "WorkerCluster",
                "name": "demo",
            },
            "maxReplicas": 4,
            "targetCPUUtilizationPercentage": 60,
        },
        "status": {"currentCPUUtilizationPercentage": 12},
    }
    assert autoscaler_view("demo", [v1]).describe() == (
        "replicas owned by hpa/old (min 1, max 4, cpu 12%/60%)"
    )
    no_cpu = hpa(spec={**hpa()["spec"], "metrics": []}, status={})
    assert (
        autoscaler_view("demo", [no_cpu]).describe() == "replicas owned by hpa/demo (min 2, max 6)"
    )


class Forbidden:
    def list(self, kind):
        raise KubeError('horizontalpodautoscalers.autoscaling is forbidden: User "x" cannot list')


def test_no_rights_or_no_api_shows_nothing():
    assert list_hpas(Forbidden()) == []


def test_render_prints_the_owner_line():
    view = ClusterView(
        "demo", "workerlab", 6, 2, 6, 12, "Ready", {}, autoscaler=autoscaler_view("demo", [hpa()])
    )
    buffer = io.StringIO()
    render([view], Console(file=buffer, width=200))
    assert "replicas owned by hpa/demo (min 2, max 6, cpu 45%/50%)" in buffer.getvalue()
    plain = ClusterView("demo", "workerlab", 2, 2, 2, 4, "Ready", {})
    buffer = io.StringIO()
    render([plain], Console(file=buffer, width=200))
    assert "owned by" not in buffer.getvalue()


def test_event_message_readers():
    assert hpa_new_size("New size: 4; reason: cpu resource utilization above target") == 4
    assert hpa_new_size("something else") is None
    assert scaled_direction("Scaled up to 3 pods") == "up"
    assert scaled_direction("Scaled down to 2 pods") == "down"
    assert scaled_direction("Created pod x") is None
