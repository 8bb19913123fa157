package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/gingham-net/gingham/api/model"
	"github.com/gingham-net/gingham/felix/routetable"
	"github.com/gingham-net/gingham/internal/netlinkx"
	"github.com/gingham-net/gingham/internal/netns"
	"github.com/gingham-net/gingham/ipip"
)

// The lab: two racks (subnets), each a bridge in the router namespace with
// the rack's gateway address; two nodes per rack; one pod per node; an
// attacker on rack A. The underlay MTU is 1500 everywhere.
const (
	underlayMTU = 1500
	podMTU      = underlayMTU - ipip.Overhead
	podGW       = "169.254.1.1"
)

var (
	poolCIDR = netip.MustParsePrefix("10.244.0.0/16")
	racks    = []struct {
		bridge string
		gw     netip.Prefix
	}{
		{"brA", netip.MustParsePrefix("192.168.1.1/24")},
		{"brB", netip.MustParsePrefix("192.168.2.1/24")},
	}
)

type node struct {
	name   string
	rack   int
	ns     *netns.NS
	addr   netip.Prefix // eth0, with the rack's prefix length (model.Node.IPv4)
	block  netip.Prefix // the node's affine block
	tunnel netip.Addr   // its IPIP tunnel address (from the block, as IPAM does)
	pod    *pod

	tun    *ipip.Manager
	filter *ipip.Filter
	x      *netlinkx.Handle
	rt     *routetable.RouteTable
	cap    *capture
}

type pod struct {
	name string
	ns   *netns.NS
	ip   netip.Addr
	host string // host-side veth
}

type world struct {
	router   *netns.NS
	attacker *netns.NS
	nodes    []*node
}

// handle is a raw netlink handle in ns, for building the topology (the
// product's own writes go through ipip and felix/routetable).
func handle(ns *netns.NS) (*netlink.Handle, error) {
	h, err := netlink.NewHandleAt(vnetns.NsHandle(ns.Fd()), unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink handle in %s: %w", ns.Path(), err)
	}
	return h, nil
}

func sysctl(ns *netns.NS, kvs ...string) error {
	return ns.Do(func() error {
		for i := 0; i+1 < len(kvs); i += 2 {
			if err := os.WriteFile(filepath.Join("/proc/sys", kvs[i]), []byte(kvs[i+1]), 0o644); err != nil {
				return fmt.Errorf("sysctl %s: %w", kvs[i], err)
			}
		}
		return nil
	})
}

func ipnet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func addAddrUp(h *netlink.Handle, name string, p netip.Prefix) (netlink.Link, error) {
	l, err := h.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("find %s: %w", name, err)
	}
	if p.IsValid() {
		if err := h.AddrAdd(l, &netlink.Addr{IPNet: ipnet(p)}); err != nil {
			return nil, fmt.Errorf("address %s on %s: %w", p, name, err)
		}
	}
	if err := h.LinkSetUp(l); err != nil {
		return nil, fmt.Errorf("up %s: %w", name, err)
	}
	return l, nil
}

// veth creates name in h's namespace with its peer in peerNS.
func veth(h *netlink.Handle, name, peer string, peerNS *netns.NS, mtu int) error {
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: mtu}, PeerName: peer, PeerNamespace: netlink.NsFd(peerNS.Fd())}
	if err := h.LinkAdd(v); err != nil {
		return fmt.Errorf("add veth %s/%s: %w", name, peer, err)
	}
	return nil
}

// routerRacks gives the router namespace one bridge per rack with the
// rack's gateway address, and turns on forwarding. The caller closes the
// returned handle.
func routerRacks(w *world) (*netlink.Handle, error) {
	rh, err := handle(w.router)
	if err != nil {
		return nil, err
	}
	for _, r := range racks {
		if err := rh.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: r.bridge, MTU: underlayMTU}}); err != nil {
			rh.Close()
			return nil, fmt.Errorf("add bridge %s: %w", r.bridge, err)
		}
		if _, err := addAddrUp(rh, r.bridge, r.gw); err != nil {
			rh.Close()
			return nil, err
		}
	}
	if err := sysctl(w.router, "net/ipv4/ip_forward", "1"); err != nil {
		rh.Close()
		return nil, err
	}
	return rh, nil
}

func build() (*world, error) {
	w := &world{}
	var err error
	if w.router, err = netns.NewNamed("router"); err != nil {
		return nil, err
	}
	rh, err := routerRacks(w)
	if err != nil {
		return nil, err
	}
	defer rh.Close()
	specs := []struct {
		name string
		rack int
		addr string
		blk  string
	}{
		{"a1", 0, "192.168.1.11/24", "10.244.1.0/26"},
		{"a2", 0, "192.168.1.12/24", "10.244.2.0/26"},
		{"b1", 1, "192.168.2.21/24", "10.244.3.0/26"},
		{"b2", 1, "192.168.2.22/24", "10.244.4.0/26"},
	}
	for i, s := range specs {
		if i == 2 {
			// Rack B's namespaces get no kernel fallback tunl0, so the
			// Manager's create path runs there; rack A adopts the fallback.
			if err := os.WriteFile("/proc/sys/net/core/fb_tunnels_only_for_init_net", []byte("1"), 0o644); err != nil {
				return nil, fmt.Errorf("sysctl fb_tunnels_only_for_init_net: %w", err)
			}
		}
		blk := netip.MustParsePrefix(s.blk)
		n := &node{name: s.name, rack: s.rack, addr: netip.MustParsePrefix(s.addr), block: blk, tunnel: blk.Addr().Next()}
		if err := w.addNode(rh, n); err != nil {
			return nil, fmt.Errorf("node %s: %w", n.name, err)
		}
		w.nodes = append(w.nodes, n)
	}
	// The attacker: a host on rack A that is not a node.
	if w.attacker, err = netns.NewNamed("attacker"); err != nil {
		return nil, err
	}
	if err := w.plug(rh, w.attacker, "u-x", 0, netip.MustParsePrefix("192.168.1.66/24")); err != nil {
		return nil, err
	}
	return w, nil
}

// plug attaches ns's eth0 to a rack bridge with addr and a default route
// via the rack gateway.
func (w *world) plug(rh *netlink.Handle, ns *netns.NS, port string, rack int, addr netip.Prefix) error {
	if err := veth(rh, port, "eth0", ns, underlayMTU); err != nil {
		return err
	}
	br, err := rh.LinkByName(racks[rack].bridge)
	if err != nil {
		return err
	}
	pl, err := rh.LinkByName(port)
	if err != nil {
		return err
	}
	if err := rh.LinkSetMaster(pl, br); err != nil {
		return fmt.Errorf("enslave %s: %w", port, err)
	}
	if err := rh.LinkSetUp(pl); err != nil {
		return err
	}
	h, err := handle(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	if _, err := addAddrUp(h, "lo", netip.Prefix{}); err != nil {
		return err
	}
	eth, err := addAddrUp(h, "eth0", addr)
	if err != nil {
		return err
	}
	gw := racks[rack].gw.Addr()
	if err := h.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: gw.AsSlice()}); err != nil {
		return fmt.Errorf("default route: %w", err)
	}
	return nil
}

func (w *world) addNode(rh *netlink.Handle, n *node) error {
	var err error
	if n.ns, err = netns.NewNamed("node-" + n.name); err != nil {
		return err
	}
	if err := w.plug(rh, n.ns, "u-"+n.name, n.rack, n.addr); err != nil {
		return err
	}
	if err := sysctl(n.ns, "net/ipv4/ip_forward", "1"); err != nil {
		return err
	}
	// The pod, wired the way the gingham CNI plugin does it: a /32 on
	// eth0, routes via 169.254.1.1, proxy ARP on the host side.
	p := &pod{name: "pod-" + n.name, ip: n.block.Addr().Next().Next(), host: "cali" + n.name}
	if p.ns, err = netns.NewNamed(p.name); err != nil {
		return err
	}
	h, err := handle(n.ns)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := veth(h, p.host, "eth0", p.ns, podMTU); err != nil {
		return err
	}
	if err := sysctl(n.ns, "net/ipv4/conf/"+p.host+"/proxy_arp", "1", "net/ipv4/neigh/"+p.host+"/proxy_delay", "0",
		"net/ipv4/conf/"+p.host+"/forwarding", "1"); err != nil {
		return err
	}
	if _, err := addAddrUp(h, p.host, netip.Prefix{}); err != nil {
		return err
	}
	ph, err := handle(p.ns)
	if err != nil {
		return err
	}
	defer ph.Close()
	if _, err := addAddrUp(ph, "lo", netip.Prefix{}); err != nil {
		return err
	}
	eth, err := addAddrUp(ph, "eth0", netip.PrefixFrom(p.ip, 32))
	if err != nil {
		return err
	}
	gw := netip.MustParseAddr(podGW)
	if err := ph.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Dst: ipnet(netip.PrefixFrom(gw, 32)), Scope: netlink.SCOPE_LINK}); err != nil {
		return fmt.Errorf("pod gateway route: %w", err)
	}
	if err := ph.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: gw.AsSlice()}); err != nil {
		return fmt.Errorf("pod default route: %w", err)
	}
	n.pod = p

	// The product's pieces, one set per node, as the agent would own them.
	if n.tun, err = ipip.NewManager(n.ns.Fd()); err != nil {
		return err
	}
	n.filter = ipip.NewFilter(n.ns.Fd())
	if n.x, err = netlinkx.Open(n.ns.Fd()); err != nil {
		return err
	}
	n.rt = routetable.New(n.x, routetable.WithInterfacePrefix("cali"))
	n.cap, err = startCapture(n.ns, "eth0")
	return err
}

func (w *world) modelNodes() []model.Node {
	out := make([]model.Node, 0, len(w.nodes))
	for _, n := range w.nodes {
		out = append(out, model.Node{Name: n.name, IPv4: n.addr, IPIPTunnelAddr: n.tunnel})
	}
	return out
}

// nextHop is the route towards m's block as n's agent would program it for
// a pool with mode: through tunl0 when ipip.Encapsulate says so, else
// direct to a node on the same subnet, else via the rack gateway (the path
// BGP learns from the ToR when the racks route pod prefixes).
func nextHop(mode model.Encap, n, m *node) routetable.NextHop {
	if ipip.Encapsulate(mode, n.addr, m.addr.Addr()) || n.addr.Masked().Contains(m.addr.Addr()) {
		return ipip.RouteNextHop(mode, n.addr, m.addr.Addr())
	}
	return routetable.NextHop{Gw: racks[n.rack].gw.Addr()}
}

// routerRoutes installs (or removes) the pod-block routes a ToR would learn
// over BGP: each block via its node.
func (w *world) routerRoutes(add bool) error {
	rh, err := handle(w.router)
	if err != nil {
		return err
	}
	defer rh.Close()
	for _, n := range w.nodes {
		r := &netlink.Route{Dst: ipnet(n.block), Gw: n.addr.Addr().AsSlice()}
		if add {
			err = rh.RouteReplace(r)
		} else if err = rh.RouteDel(r); errors.Is(err, unix.ESRCH) {
			err = nil
		}
		if err != nil {
			return fmt.Errorf("router route %s: %w", n.block, err)
		}
	}
	return nil
}
