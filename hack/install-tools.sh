#!/usr/bin/env bash
# Installs everything gingham's tests, lab and benchmarks need on a fresh
# Debian machine of this kind. Idempotent: each step is skipped when its
# result is already there. Binaries go to bin/ of the checkout.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin="$top/bin"
mkdir -p "$bin"

pkgs=(etcd-server bird2 frr containernetworking-plugins iperf3 iproute2 nftables tcpdump
      qemu-system-x86 linux-image-amd64 busybox-static cpio kmod gobgpd)
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

build() { # name package
  if [ ! -x "$bin/$1" ] || [ "$top/hack/tools/go.mod" -nt "$bin/$1" ]; then
    echo "tools: building $1 (first build takes several minutes)"
    (cd "$top/hack/tools" && CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$bin/$1" "$2")
  fi
}
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build controller-gen sigs.k8s.io/controller-tools/cmd/controller-gen
echo "tools: ready in $bin"
