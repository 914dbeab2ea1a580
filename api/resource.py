"""Names of the WorkerCluster resource and of what the operator puts on the objects it owns."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

GROUP: Final = "workerlab.dev"
VERSION: Final = "v1alpha1"
KIND: Final = "WorkerCluster"
PLURAL: Final = "workerclusters"
API_VERSION: Final = f"{GROUP}/{VERSION}"
RESOURCE: Final = (
    f"{PLURAL}.{GROUP}"  # what kubectl takes: `kubectl get workerclusters.workerlab.dev`
)

# Labels every owned object carries; the selector uses NAME + INSTANCE only, so that a change of
# the template hash never changes which pods a Service routes to.
LABEL_NAME: Final = "app.kubernetes.io/name"
LABEL_INSTANCE: Final = "app.kubernetes.io/instance"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
LABEL_COMPONENT: Final = "app.kubernetes.io/component"
LABEL_TEMPLATE_HASH: Final = f"{GROUP}/template-hash"
# What the operator told a pod's arbiter in place (no restart): the process count, which the
# worker reads through a downward API file (WORKER_PROCESSES_FILE); when it said so (RFC 3339);
# and why the pod could not take a change in place (it is rolled instead).
ANNOTATION_PROCESSES: Final = f"{GROUP}/processes"
ANNOTATION_CHANGED_AT: Final = f"{GROUP}/changed-in-place-at"
ANNOTATION_IN_PLACE_REFUSED: Final = f"{GROUP}/in-place-refused"
APP_NAME: Final = "workerlab-worker"
MANAGER: Final = "workerlab-operator"

# The operator's default worker image (for WorkerClusters without spec.image): env vars the Helm
# chart sets on the operator Deployment, read by `workerlab operator` when its flags
# (--worker-image, --worker-image-pull-policy, --worker-image-pull-secret) are not given:
# an image reference, Always|IfNotPresent|Never, and comma-separated Secret names.
ENV_WORKER_IMAGE: Final = "WORKERLAB_WORKER_IMAGE"
ENV_WORKER_IMAGE_PULL_POLICY: Final = "WORKERLAB_WORKER_IMAGE_PULL_POLICY"
ENV_WORKER_IMAGE_PULL_SECRETS: Final = "WORKERLAB_WORKER_IMAGE_PULL_SECRETS"

# Where `make up` installs the operator.
OPERATOR_NAMESPACE: Final = "workerlab-system"
# The Lease the operator replicas campaign for (`--leader-elect`): its holder is the active master.
OPERATOR_LEASE: Final = "workerlab-operator"
# The operator's exit status after losing the Lease (fencing); the kubelet restarts it a standby.
OPERATOR_EXIT_LOST_LEASE: Final = 3
OPERATOR_DEPLOYMENT: Final = "workerlab-operator"
# The class defaults `workerlab class add` reads (the Helm chart's class.* values), in
# OPERATOR_NAMESPACE: a ConfigMap with one key, a profile as `class add --profile` takes it.
CLASS_DEFAULTS_CONFIGMAP: Final = "workerlab-class-defaults"
CLASS_DEFAULTS_KEY: Final = "profile.yaml"
# The namespace of the course's sample WorkerCluster.
LAB_NAMESPACE: Final = "workerlab"
# Where the Ingress controller runs (manifests/addons/ingress): a WorkerCluster's NetworkPolicy
# admits it, since it sends traffic straight to the pods.
INGRESS_NAMESPACE: Final = "workerlab-ingress"

# An HorizontalPodAutoscaler may own spec.replicas through the scale subresource (lab 11). These
# are Kubernetes' names, not ours: what kubectl takes, the kind, and the reason its controller
# posts when it changes the replica count.
HPA_RESOURCE: Final = "horizontalpodautoscalers.autoscaling"
HPA_KIND: Final = "HorizontalPodAutoscaler"
HPA_RESCALE_REASON: Final = "SuccessfulRescale"


class ConditionType(StrEnum):
    """Deployment-style conditions in `status.conditions`."""

    READY = "Ready"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"


class Phase(StrEnum):
    """`status.phase`: the one-word summary `kubectl get wc` shows."""

    READY = "Ready"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    PAUSED = "Paused"


class Reason(StrEnum):
    """Event reasons the operator posts on a WorkerCluster (and condition reasons it sets)."""

    CREATED_POD = "CreatedPod"
    REPLACED_POD = "ReplacedPod"
    DELETED_POD = "DeletedPod"
    SCALED = "Scaled"
    FAILED_CREATE = "FailedCreate"
    CREATED_SERVICE = "CreatedService"
    UPDATED_SERVICE = "UpdatedService"
    SERVICE_CONFLICT = "ServiceConflict"
    SERVICE_REFUSED = "ServiceRefused"  # the API server refused a write (quota, admission, ...)
    CREATED_INGRESS = "CreatedIngress"
    UPDATED_INGRESS = "UpdatedIngress"
    DELETED_INGRESS = "DeletedIngress"
    INGRESS_CONFLICT = "IngressConflict"
    INGRESS_REFUSED = "IngressRefused"
    CREATED_NETWORK_POLICY = "CreatedNetworkPolicy"
    UPDATED_NETWORK_POLICY = "UpdatedNetworkPolicy"
    DELETED_NETWORK_POLICY = "DeletedNetworkPolicy"
    NETWORK_POLICY_CONFLICT = "NetworkPolicyConflict"
    NETWORK_POLICY_REFUSED = "NetworkPolicyRefused"
    IGNORED_PODS = "IgnoredPods"
    NODE_LOST = "NodeLost"  # a node stopped renewing its heartbeat: its pods are replaced
    NODE_RECOVERED = "NodeRecovered"
    # A pod's own master re-forked a dead process (seen in its /processes): the arbiter healed it.
    PROCESS_REPLACED = "ProcessReplaced"
    CHANGED_IN_PLACE = "ChangedInPlace"  # processes or CPU/memory of a running pod, no restart
    IN_PLACE_FALLBACK = "InPlaceFallback"  # a change a pod could not take in place: rolled
    ROLLING_UPDATE = "RollingUpdate"  # a template change no pod can take in place
    RECOVERED = "Recovered"
    READY = "Ready"
    PAUSED = "Paused"


# `workerlab class`: one namespace per learner on a shared cluster.
LEARNER_NAMESPACE_PREFIX: Final = "learner-"
# On a learner's namespace (value: the learner's name); `class add/remove` act only on these.
LABEL_LEARNER: Final = f"{GROUP}/learner"
# The learner's ServiceAccount, Role, RoleBinding, ResourceQuota and LimitRange share this name.
LEARNER_OBJECTS: Final = "workerlab-learner"
# A passed `workerlab lab check N` records itself here, in the learner's namespace (key lab-N).
PROGRESS_CONFIGMAP: Final = "workerlab-progress"
# A pass the instructor re-ran (`workerlab class check NAME N`) and saw pass: written with the
# instructor's rights beside the learner's record, where the learner's Role can only read it.
VERIFIED_CONFIGMAP: Final = "workerlab-verified"
# Context names that `workerlab class add` writes into a learner's kubeconfig: `workerlab-NAME`.
CLASS_CONTEXT_PREFIX: Final = "workerlab-"
