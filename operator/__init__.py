"""The cluster-level master: WorkerCluster CRD model, pure reconcile core, kopf handlers."""
