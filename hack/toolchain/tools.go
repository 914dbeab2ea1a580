//go:build tools

// Package toolchain pins the commands hack/build-k8s.sh compiles, and metrics-server
// (hack/build-addon-images.sh). Everything the lab builds from Go modules that shares packages
// with Kubernetes is built in this one module (metrics-server here; etcd as cmd/etcd):
// one version of each shared package, compiled once, where separate modules compiled their own
// copies (metrics-server alone: ~2 min cold).
package toolchain

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubeadm"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "sigs.k8s.io/metrics-server/cmd/metrics-server"
)
