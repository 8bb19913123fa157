package felix

import (
	"net"
	"net/netip"

	"github.com/gingham-net/gingham/felix/routetable"
)

// Endpoint is a local pod: its address, its host-side veth and the MAC of
// its eth0 (nil when unknown: no neighbour entry is written then).
// LinkIndex is the index of the host veth the MAC was read from: the MAC
// is written only onto that very link, never onto a veth recreated under
// the same name since (it belongs to a new pod interface with a new MAC).
type Endpoint struct {
	IP        netip.Addr
	Iface     string
	MAC       net.HardwareAddr
	LinkIndex int
}

// NextHop is one path of a learned route; {Gw, Iface: "tunl0", OnLink: true}
// is an IPIP route.
type NextHop = routetable.NextHop

// Route is a route learned over BGP: a prefix and its next hops (several for
// ECMP).
type Route struct {
	Prefix   netip.Prefix
	NextHops []NextHop
	MTU      int // 0: none
}

// DesiredRoutes computes the routes the node should have, in priority order
// (the route table keeps the first target per prefix): local endpoints, then
// blackholes for local blocks, then learned routes.
func DesiredRoutes(eps []Endpoint, blocks []netip.Prefix, remote []Route) []routetable.Target {
	out := make([]routetable.Target, 0, len(eps)+len(blocks)+len(remote))
	for _, ep := range eps {
		if !ep.IP.Is4() || ep.Iface == "" {
			continue
		}
		out = append(out, routetable.Target{Dst: netip.PrefixFrom(ep.IP, 32), NextHops: []NextHop{{Iface: ep.Iface}}})
	}
	for _, b := range blocks {
		if !b.Addr().Is4() {
			continue
		}
		out = append(out, routetable.Target{Dst: b.Masked(), Blackhole: true})
	}
	for _, r := range remote {
		if !r.Prefix.Addr().Is4() || len(r.NextHops) == 0 {
			continue
		}
		out = append(out, routetable.Target{Dst: r.Prefix.Masked(), NextHops: r.NextHops, MTU: r.MTU})
	}
	return out
}
