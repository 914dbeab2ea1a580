#!/usr/bin/env bash
# Put helm $HELM_VERSION at $CACHE/bin/helm (charts/workerlab: lint, render, install). Built from
# the Go module proxy (helm.sh/helm/v4 is pure Go), cached per version under $CACHE/tools.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
dir="$CACHE/tools/helm-$HELM_VERSION"
if [ -x "$dir/helm" ]; then
  step_cached "helm $HELM_VERSION" "$dir/helm"
else
  command -v go >/dev/null || die "helm $HELM_VERSION is not built and Go is missing: install Go >= 1.26"
  step_miss "helm $HELM_VERSION" "go install helm.sh/helm/v4/cmd/helm@$HELM_VERSION (~2.5 min cold on 2 idle cores; seconds with a warm Go build cache)"
  mkdir -p "$dir"
  # internal/version.version is what `helm version` prints (its default is only "v4.3").
  GOBIN="$dir" CGO_ENABLED=0 GOFLAGS= go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
fi
mkdir -p "$CACHE/bin"
ln -sfn "$dir/helm" "$CACHE/bin/helm"
version=$("$CACHE/bin/helm" version --template '{{.Version}}')
[ "$version" = "$HELM_VERSION" ] || die "$CACHE/bin/helm says $version, wanted $HELM_VERSION"
progress "helm $version at $CACHE/bin/helm"
