{{/*
Names are fixed, not derived from the release name: the CLI, the labs and the docs look for the
Deployment workerlab-operator (api/resource.py), and the CRDs and ClusterRole are cluster-wide
anyway, so there is one release per cluster.
*/}}
{{- define "workerlab.operatorName" -}}
workerlab-operator
{{- end -}}

{{/* helm.sh/chart: name-version, as `helm create` writes it. */}}
{{- define "workerlab.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The labels Helm's conventions add on top of the lab's own. */}}
{{- define "workerlab.helmLabels" -}}
helm.sh/chart: {{ include "workerlab.chart" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/*
The operator's selector: the same as manifests/ (a Deployment's selector is immutable, and the
metrics Service and NetworkPolicy select the pods by it).
*/}}
{{- define "workerlab.selectorLabels" -}}
app.kubernetes.io/name: {{ include "workerlab.operatorName" . }}
{{- end -}}

{{/* Every operator object's labels: the lab's (as in manifests/) plus Helm's. */}}
{{- define "workerlab.labels" -}}
{{ include "workerlab.selectorLabels" . }}
app.kubernetes.io/component: operator
{{ include "workerlab.helmLabels" . }}
{{- end -}}

{{/*
An image reference: [registry/]repository, then @digest when set, else :tag (the chart's
appVersion when empty). Call with (dict "registry" ... "image" ... "appVersion" ...).
*/}}
{{- define "workerlab.image" -}}
{{- $repository := .image.repository -}}
{{- if .registry -}}
{{- $repository = printf "%s/%s" (trimSuffix "/" .registry) .image.repository -}}
{{- end -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (.image.tag | default .appVersion) -}}
{{- end -}}
{{- end -}}

{{- define "workerlab.operatorImage" -}}
{{- include "workerlab.image" (dict "registry" .Values.image.registry "image" .Values.operator.image "appVersion" .Chart.AppVersion) -}}
{{- end -}}

{{- define "workerlab.workerImage" -}}
{{- include "workerlab.image" (dict "registry" .Values.image.registry "image" .Values.worker.image "appVersion" .Chart.AppVersion) -}}
{{- end -}}

{{/*
The operator's rules on namespaced objects: in a ClusterRole when it watches every namespace, in
one Role per namespace when .Values.operator.watchNamespaces lists them.
*/}}
{{- define "workerlab.namespacedRules" -}}
# The WorkerClusters: watch them, keep kopf's annotations (patch), write their status.
- apiGroups: [workerlab.dev]
  resources: [workerclusters]
  verbs: [get, list, watch, patch]
- apiGroups: [workerlab.dev]
  resources: [workerclusters/status]
  verbs: [get, patch]
# The workers: the operator creates, watches and deletes pods itself (no Deployment), and
# changes them in place: patch tells a pod's arbiter its process count (an annotation), the
# resize subresource sets a running container's CPU and memory.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create, delete, patch]
- apiGroups: [""]
  resources: [pods/resize]
  verbs: [patch]
# GET /processes of each Ready pod through the API server's pod proxy.
- apiGroups: [""]
  resources: [pods/proxy]
  verbs: [get]
# The Service in front of the pods; update restores it after a hand edit.
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, update]
- apiGroups: [networking.k8s.io]
  resources: [ingresses]
  verbs: [get, list, watch, create, update, delete]
# The opt-in NetworkPolicy (spec.networkPolicy); update restores it after a hand edit.
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch, create, update, delete]
# Events on WorkerClusters (ours and kopf's).
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end -}}

{{/* The operator's cluster-wide rules, whatever namespaces it watches. */}}
{{- define "workerlab.clusterRules" -}}
# kopf: discovering resources at runtime.
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
# kopf: peering, so that a second operator instance pauses instead of fighting.
- apiGroups: [kopf.dev]
  resources: [clusterkopfpeerings]
  verbs: [get, list, watch, patch, create]
{{- end -}}
