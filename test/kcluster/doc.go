// Package kcluster builds a real Kubernetes cluster on this machine for
// gingham's tests and `make cluster`: a control plane (etcd,
// kube-apiserver with RBAC and the Node authorizer, controller-manager,
// scheduler) in the host's network namespace, and nodes that are each a
// network namespace plus a private mount namespace running their own
// containerd, kubelet and kube-proxy. The nodes sit in two racks behind
// FRR top-of-rack routers joined by a BIRD spine (the lab's topology from
// test/labnet), so gingham's BGP has real routers to talk to.
//
// gingham itself is installed the way a user installs it: the image
// archives from `make image` imported into each node's containerd, then
// `kubectl apply` of deploy/ through a kustomize overlay that sets only the
// image tag and the IPIP mode (this host's kernel has no ipip).
//
// Invariants:
//   - Everything the cluster creates on the host is recorded in the run
//     directory's state file before it is created, so Down removes exactly
//     that: processes by PID, the per-node cgroups, the host mountpoint
//     directories it made, the host's control-plane veth and its routes.
//   - Host sysctls are never written: the three the kubelet insists on are
//     faked per node by bind mounts inside the node's mount namespace, and
//     kube-proxy is told to leave conntrack limits alone.
//   - Every hostPath the shipped DaemonSet uses is bind-mounted per node,
//     so nodes never share CNI configuration, binaries or gingham state.
package kcluster
