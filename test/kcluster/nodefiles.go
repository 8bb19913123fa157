package kcluster

import (
	"bytes"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/gingham-net/gingham/test/labnet"
)

// hostBinds are the host paths bound per node inside its mount namespace:
// every hostPath the shipped DaemonSet writes, the container runtime's
// state, the CNI directories and the kubelet's pod logs. Keys are the
// directory names under the node's directory.
var hostBinds = map[string]string{
	"etc-cni-net.d":      "/etc/cni/net.d",
	"opt-cni-bin":        "/opt/cni/bin",
	"var-lib-cni":        "/var/lib/cni",
	"var-log-containers": "/var/log/containers",
	"var-log-pods":       "/var/log/pods",
	"run-containerd":     "/run/containerd",
	"run-gingham":        "/run/gingham",
	"var-lib-gingham":    "/var/lib/gingham",
	"var-log-gingham":    "/var/log/gingham",
}

// fakeSysctls are the values the kubelet insists on for three global
// sysctls; bound over /proc/sys inside the node, the kubelet finds them set
// and never writes the host's.
var fakeSysctls = map[string]string{
	"vm/overcommit_memory": "1",
	"kernel/panic":         "10",
	"kernel/panic_on_oops": "1",
}

// nodeFiles are one node's generated configuration files.
type nodeFiles struct {
	Name, Dir, NetNS, CgroupRoot string
	IP, Labels                   string
	RunDir, Bin, Images          string
	Kubeconfig, ProxyKubeconfig  string
	DNS, PoolCIDR                string
	Binds                        []bind
	Sysctls                      []bind
}

type bind struct{ Src, Dst string }

func (c *Cluster) nodeFiles(n labnet.Node) nodeFiles {
	dir := filepath.Join(c.O.RunDir, "nodes", n.Name)
	f := nodeFiles{
		Name: n.Name, Dir: dir, NetNS: labnet.NetNSPath(c.Lab.NS(n.Name)), CgroupRoot: "/" + c.O.Prefix + n.Name,
		IP: n.Addr.Addr().String(), RunDir: c.O.RunDir, Bin: c.O.Bin, Images: c.O.Images,
		Kubeconfig: c.PKI.Kubeconfig("node-" + n.Name), ProxyKubeconfig: c.PKI.Kubeconfig("kube-proxy"),
		DNS: DNSServiceIP.String(), PoolCIDR: c.Spec.PoolCIDR.String(),
	}
	var labels []string
	for k, v := range n.Labels {
		labels = append(labels, k+"="+v)
	}
	sort.Strings(labels)
	f.Labels = strings.Join(labels, ",")
	for src, dst := range hostBinds {
		f.Binds = append(f.Binds, bind{Src: filepath.Join(dir, src), Dst: dst})
	}
	f.Binds = append(f.Binds, bind{Src: filepath.Join(dir, "machine-id"), Dst: "/etc/machine-id"})
	sort.Slice(f.Binds, func(i, j int) bool { return f.Binds[i].Dst < f.Binds[j].Dst })
	for k := range fakeSysctls {
		f.Sysctls = append(f.Sysctls, bind{Src: filepath.Join(dir, "sysctl", strings.ReplaceAll(k, "/", "-")), Dst: "/proc/sys/" + k})
	}
	sort.Slice(f.Sysctls, func(i, j int) bool { return f.Sysctls[i].Dst < f.Sysctls[j].Dst })
	return f
}

// render fills the named template with f.
func (f nodeFiles) render(name string) ([]byte, error) {
	var b bytes.Buffer
	if err := nodeTemplates.ExecuteTemplate(&b, name, f); err != nil {
		return nil, fmt.Errorf("node %s: render %s: %w", f.Name, name, err)
	}
	return b.Bytes(), nil
}

var nodeTemplates = template.Must(template.New("").Parse(`
{{define "containerd.toml"}}version = 2
root = "{{.Dir}}/containerd/root"
state = "{{.Dir}}/containerd/state"
[grpc]
  address = "{{.Dir}}/containerd/containerd.sock"
[ttrpc]
  address = "{{.Dir}}/containerd/containerd.sock.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{{.Dir}}/containerd/opt"
# NRI's socket is machine-global (/var/run/nri): nodes would share it.
[plugins."io.containerd.nri.v1.nri"]
  disable = true
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10.2"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  netns_mounts_under_state_dir = true
  # This machine's root lacks CAP_SYS_RESOURCE: never ask runc for an
  # oom_score_adj below containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
    max_conf_num = 1
{{end}}
{{define "kubelet.yaml"}}apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://{{.Dir}}/containerd/containerd.sock
cgroupDriver: cgroupfs
cgroupRoot: {{.CgroupRoot}}
cgroupsPerQOS: true
# This host runs cgroup v1 (hybrid).
failCgroupV1: false
failSwapOn: false
# No CAP_SYS_RESOURCE here: -999 fails.
oomScoreAdj: 0
address: {{.IP}}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
clusterDomain: cluster.local
clusterDNS: [{{.DNS}}]
resolvConf: {{.RunDir}}/resolv.conf
# Images cannot be pulled back here: never garbage-collect them.
imageGCHighThresholdPercent: 100
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
serializeImagePulls: false
{{end}}
{{define "kube-proxy.yaml"}}apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
clientConnection: {kubeconfig: {{.ProxyKubeconfig}}}
hostnameOverride: {{.Name}}
clusterCIDR: {{.PoolCIDR}}
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# Zero: leave the machine-global conntrack sysctls alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s, udpTimeout: 0s, udpStreamTimeout: 0s}
{{end}}
{{define "node.sh"}}#!/bin/bash
# Node {{.Name}}: runs in its network namespace and a private mount
# namespace (nsenter --net + unshare --mount). Generated by test/kcluster.
set -eu
# A sysfs of this network namespace (/sys/class/net), with the host's
# cgroup tree bound back under it (ip netns exec would leave it empty).
mkdir -p {{.Dir}}/.cgroup
mount --rbind /sys/fs/cgroup {{.Dir}}/.cgroup
mount -t sysfs sysfs /sys
mount --rbind {{.Dir}}/.cgroup /sys/fs/cgroup
umount -l {{.Dir}}/.cgroup
{{range .Sysctls}}mount --bind {{.Src}} {{.Dst}}
{{end}}{{range .Binds}}mount --bind {{.Src}} {{.Dst}}
{{end}}ip link set lo up
export PATH={{.Bin}}:$PATH
containerd --config {{.Dir}}/containerd.toml >> {{.RunDir}}/logs/containerd-{{.Name}}.log 2>&1 &
for _ in $(seq 200); do [ -S {{.Dir}}/containerd/containerd.sock ] && break; sleep 0.05; done
for img in {{.Images}}/*.tar; do
  [ -e "$img" ] || continue
  ctr --address {{.Dir}}/containerd/containerd.sock -n k8s.io images import "$img" > /dev/null
done
kubelet --config={{.Dir}}/kubelet.yaml --kubeconfig={{.Kubeconfig}} --hostname-override={{.Name}} \
  --node-ip={{.IP}} --node-labels={{.Labels}} --root-dir={{.Dir}}/kubelet --v=2 \
  >> {{.RunDir}}/logs/kubelet-{{.Name}}.log 2>&1 &
kube-proxy --config={{.Dir}}/kube-proxy.yaml --v=2 >> {{.RunDir}}/logs/kube-proxy-{{.Name}}.log 2>&1 &
wait
{{end}}`))
