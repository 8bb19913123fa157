//go:build tools

// Package tools records the tool dependencies of the gingham build: the
// Kubernetes binaries of the test control plane and of the real-cluster
// nodes (make cluster), the upstream e2e suite and its agnhost image, and
// controller-gen. All Kubernetes parts come from one k8s.io/kubernetes
// version, the one go.mod pins.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/test/e2e"
	_ "k8s.io/kubernetes/test/images/agnhost"
	_ "sigs.k8s.io/controller-tools/cmd/controller-gen"
)
