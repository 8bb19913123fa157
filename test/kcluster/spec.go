package kcluster

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"

	"github.com/gingham-net/gingham/test/labnet"
)

// Addresses and ranges of the cluster, shared by its configuration files,
// the tests and the docs.
var (
	// HostCPAddr is the control plane's address: the host end of a veth to
	// tor1 (the control plane sits on rack1's ToR, like a management rack).
	HostCPAddr = netip.MustParsePrefix("10.0.250.1/30")
	// ToRCPAddr is tor1's end of that veth, the host's next hop to the racks.
	ToRCPAddr = netip.MustParsePrefix("10.0.250.2/30")
	// ServiceCIDR is the Service range; its first address is the
	// kubernetes Service, DNSServiceIP the cluster DNS.
	ServiceCIDR  = netip.MustParsePrefix("10.96.0.0/12")
	DNSServiceIP = netip.MustParseAddr("10.96.0.10")
	// Underlay covers the racks' node subnets (10.0.1.0/24, 10.0.2.0/24) and
	// the ToR-spine links; the host routes it through tor1.
	Underlay = netip.MustParsePrefix("10.0.0.0/16")
)

// APIPort is kube-apiserver's secure port.
const APIPort = 6443

// Options configure a cluster.
type Options struct {
	RunDir string // configs, PKI, logs, per-node state and containerd roots
	Prefix string // namespace prefix, e.g. "ghk-"
	Nodes  int    // 1..4, spread over two racks (rack1 gets the extra)
	Bin    string // the repository's bin/ (make tools, make build)
	Images string // directory of image archives (make image)
	// Network is the pod network the cluster is meant for: NetworkGingham
	// (default) or NetworkBridge, for which the controller-manager
	// allocates node podCIDRs from the pool.
	Network string
}

// Spec is the network topology of a cluster of n nodes: the lab's two
// racks behind FRR ToRs with a BIRD spine, rack1 holding ceil(n/2) nodes,
// and tor1 originating the control plane's link.
func Spec(o Options) (labnet.Spec, error) {
	if o.Nodes < 1 || o.Nodes > 4 {
		return labnet.Spec{}, fmt.Errorf("cluster spec: nodes %d: must be 1 to 4", o.Nodes)
	}
	s := labnet.ToRSpec(o.Prefix, filepath.Join(o.RunDir, "net"), 2)
	keep := map[string]bool{}
	for i := range o.Nodes {
		keep[fmt.Sprintf("rack%d-node%d", i%2+1, i/2+1)] = true
	}
	s.Nodes = slices.DeleteFunc(s.Nodes, func(n labnet.Node) bool { return !keep[n.Name] })
	for i := range s.Routers {
		r := &s.Routers[i]
		r.Neighbors = slices.DeleteFunc(r.Neighbors, func(n labnet.Neighbor) bool { return n.Node && !keep[n.Name] })
		if r.Name == "tor1" {
			r.Networks = append(r.Networks, ToRCPAddr.Masked())
		}
	}
	return s, nil
}

// APIServerURL is the URL nodes, pods (through the kubernetes Service) and
// the host use.
func APIServerURL() string { return fmt.Sprintf("https://%s:%d", HostCPAddr.Addr(), APIPort) }
