#!/usr/bin/env bash
# Installs everything gingham's tests, lab and benchmarks need on a fresh
# Debian machine of this kind. Idempotent: each step is skipped when its
# result is already there. Binaries go to bin/ of the checkout.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin="$top/bin"
mkdir -p "$bin"

pkgs=(etcd-server bird2 frr containernetworking-plugins iperf3 iproute2 nftables tcpdump
      qemu-system-x86 linux-image-amd64 busybox-static cpio kmod gobgpd
      runc util-linux curl netcat-openbsd dash bash gcc libc6-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "tools: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Keep the packaged daemons from starting on the host: tests run them in namespaces.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi

ln -sf "$(command -v etcd || echo /usr/bin/etcd)" "$bin/etcd"

# The Kubernetes version every Kubernetes binary is built at: the one
# hack/tools/go.mod pins. Version ldflags make them report it (kubectl
# version, e2e specs gated on the server version) instead of v0.0.0-master.
k8s_version=$(cd "$top/hack/tools" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
k8s_minor=$(echo "$k8s_version" | cut -d. -f2)
k8s_ldflags="-s"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $p.gitVersion=$k8s_version -X $p.gitMajor=1 -X $p.gitMinor=$k8s_minor -X $p.gitTreeState=clean"
done

stale() { [ ! -x "$bin/$1" ] || [ "$top/hack/tools/go.mod" -nt "$bin/$1" ] || [ "$0" -nt "$bin/$1" ]; }

build() { # name package
  if stale "$1"; then
    echo "tools: building $1 (first build takes several minutes)"
    (cd "$top/hack/tools" && CGO_ENABLED=0 go build -trimpath -ldflags="$k8s_ldflags" -o "$bin/$1" "$2")
  fi
}
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build controller-gen sigs.k8s.io/controller-tools/cmd/controller-gen

# The real-cluster nodes (make cluster) and Kubernetes' own tests.
build kubelet k8s.io/kubernetes/cmd/kubelet
build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
build kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler
build kube-proxy k8s.io/kubernetes/cmd/kube-proxy
build kubectl k8s.io/kubernetes/cmd/kubectl
build agnhost k8s.io/kubernetes/test/images/agnhost
if stale e2e.test; then
  echo "tools: building e2e.test (k8s.io/kubernetes/test/e2e; ~10 min the first time)"
  (cd "$top/hack/tools" && CGO_ENABLED=0 go test -c -trimpath -ldflags="$k8s_ldflags" -o "$bin/e2e.test" k8s.io/kubernetes/test/e2e)
fi

# Tools outside the Kubernetes module, pinned here: containerd v2 (Debian's
# 1.6 is losing kubelet support), its runc shim and ctr; crictl; CoreDNS for
# the conformance specs that resolve Service names; portmap.
install_at() { # name module-path@version [go build tags]
  if stale "$1"; then
    echo "tools: building $1 ($2)"
    GOBIN="$bin" CGO_ENABLED=0 GOFLAGS=-mod=mod go install -trimpath -ldflags=-s ${3:+-tags "$3"} "$2"
  fi
}
containerd_version=v2.4.2
ctrd_tags=no_btrfs,no_devmapper,no_zfs
install_at containerd github.com/containerd/containerd/v2/cmd/containerd@$containerd_version $ctrd_tags
install_at containerd-shim-runc-v2 github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$containerd_version $ctrd_tags
install_at ctr github.com/containerd/containerd/v2/cmd/ctr@$containerd_version $ctrd_tags
install_at crictl sigs.k8s.io/cri-tools/cmd/crictl@v1.37.0
install_at coredns github.com/coredns/coredns@v1.14.7
# portmap, the conflist's second plugin, shipped in the gingham image: a
# release that speaks CNI 1.1 (STATUS, GC); Debian's 1.1.1 fails STATUS
# ("missing containerID") and the node stays NotReady.
install_at portmap github.com/containernetworking/plugins/plugins/meta/portmap@v1.9.0
echo "tools: ready in $bin"
