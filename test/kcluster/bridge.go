package kcluster

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gingham-net/gingham/test/labnet"
)

// Pod networks the cluster can install.
const (
	NetworkGingham = "gingham" // deploy/ (the product)
	NetworkBridge  = "bridge"  // the CNI reference bridge + host-local baseline
)

// bridgeConflist is the reference plugins' network for one node: a bridge
// with the node's podCIDR from host-local, no masquerade (pods see each
// other's addresses), and portmap for hostPorts.
func bridgeConflist(podCIDR string) string {
	return fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "bridge-baseline", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}
]}
`, podCIDR)
}

// InstallBridge installs the baseline network: for each node, the bridge
// conflist for the podCIDR the controller-manager allocated, and static
// routes to that podCIDR in the racks' routers (its ToR through the node,
// the spine through that ToR, the other ToR through the spine), which is
// what a BGP agent would otherwise do.
func (c *Cluster) InstallBridge(ctx context.Context) error {
	for _, n := range c.Spec.Nodes {
		var cidr string
		if err := c.WaitFor(ctx, time.Minute, "podCIDR of "+n.Name, func(ctx context.Context) (bool, error) {
			out, err := c.Kubectl(ctx, "get", "node", n.Name, "-o", "jsonpath={.spec.podCIDR}")
			cidr = strings.TrimSpace(out)
			return err == nil && cidr != "", nil
		}); err != nil {
			return err
		}
		f := c.nodeFiles(n)
		if err := os.WriteFile(filepath.Join(f.Dir, "etc-cni-net.d", "10-bridge.conflist"), []byte(bridgeConflist(cidr)), 0o644); err != nil {
			return fmt.Errorf("bridge: %w", err)
		}
		routes, err := c.bridgeRoutes(n, cidr)
		if err != nil {
			return err
		}
		for ns, via := range routes {
			if _, err := c.Lab.Run(ctx, ns, "ip", "route", "replace", cidr, "via", via.String()); err != nil {
				return fmt.Errorf("bridge route %s in %s: %w", cidr, ns, err)
			}
		}
	}
	return c.WaitFor(ctx, 2*time.Minute, "every node Ready", c.nodesReady)
}

// bridgeRoutes is, for node n's podCIDR, the next hop in each router.
func (c *Cluster) bridgeRoutes(n labnet.Node, cidr string) (map[string]netip.Addr, error) {
	seg, ok := c.Spec.Segment(n.Segment)
	if !ok {
		return nil, fmt.Errorf("bridge: node %s: no segment %q", n.Name, n.Segment)
	}
	tor := seg.Host
	routes := map[string]netip.Addr{tor: n.Addr.Addr()}
	for _, l := range c.Spec.Links { // spine <-> ToR links
		if l.A != "spine" {
			continue
		}
		if l.B == tor {
			routes["spine"] = l.BAddr.Addr()
		} else {
			routes[l.B] = l.AAddr.Addr()
		}
	}
	return routes, nil
}
