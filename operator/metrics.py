"""Prometheus metrics, named like controller-runtime's so the usual dashboards read them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.reconcile_total = Counter(
            "workerlab_reconcile_total",
            "Reconciles of WorkerClusters by result (success, error, requeue_after).",
            ["result"],
            registry=r,
        )
        self.reconcile_errors = Counter(
            "workerlab_reconcile_errors_total", "Reconciles that ended in an error.", registry=r
        )
        self.reconcile_time = Histogram(
            "workerlab_reconcile_time_seconds",
            "Time one reconcile took.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.pods_created = Counter(
            "workerlab_pods_created_total", "Pods created, by reason.", ["reason"], registry=r
        )
        self.pods_deleted = Counter(
            "workerlab_pods_deleted_total", "Pods deleted, by reason.", ["reason"], registry=r
        )
        self.pods_replaced = Counter(
            "workerlab_pods_replaced_total",
            "Pods created to replace one that was deleted, failed or evicted.",
            registry=r,
        )
        self.status_writes = Counter(
            "workerlab_status_writes_total",
            "Status patches sent (stays flat while nothing changes).",
            registry=r,
        )
        self.workqueue_depth = Gauge(
            "workerlab_workqueue_depth", "WorkerClusters waiting to be reconciled.", registry=r
        )

    def serve(self, port: int, address: str = "127.0.0.1") -> None:
        start_http_server(port, addr=address, registry=self.registry)
