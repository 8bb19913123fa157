package ipip

import (
	"net/netip"
	"slices"

	"github.com/gingham-net/gingham/api/model"
	"github.com/gingham-net/gingham/felix/routetable"
)

// Device is the name of the IPIP device (the kernel's fallback tunnel).
const Device = "tunl0"

// Overhead is the outer IPv4 header IPIP adds to every packet.
const Overhead = 20

// Encapsulate reports whether traffic of a pool with the given ipipMode
// towards a remote node at nextHop goes through tunl0. localSubnet is this
// node's address with the prefix length of its subnet (model.Node.IPv4); for
// CrossSubnet an unknown subnet means "encapsulate", the safe choice.
func Encapsulate(mode model.Encap, localSubnet netip.Prefix, nextHop netip.Addr) bool {
	switch mode {
	case model.EncapAlways:
		return true
	case model.EncapCrossSubnet:
		return !localSubnet.IsValid() || !localSubnet.Masked().Contains(nextHop)
	}
	return false
}

// RouteNextHop is the next hop of a route towards a remote node at nextHop:
// "via nextHop dev tunl0 onlink" when Encapsulate says so, else "via
// nextHop" (the kernel picks the interface).
func RouteNextHop(mode model.Encap, localSubnet netip.Prefix, nextHop netip.Addr) routetable.NextHop {
	if Encapsulate(mode, localSubnet, nextHop) {
		return routetable.NextHop{Gw: nextHop, Iface: Device, OnLink: true}
	}
	return routetable.NextHop{Gw: nextHop}
}

// Enabled reports whether any IPv4 pool uses IPIP (Always or CrossSubnet).
// Disabled pools count: their existing blocks are still routed.
func Enabled(pools []model.Pool) bool {
	return slices.ContainsFunc(pools, func(p model.Pool) bool {
		return p.CIDR.Addr().Is4() && p.IPIPMode != "" && p.IPIPMode != model.EncapNever
	})
}

// TunnelMTU is the MTU of tunl0 for an uplink of hostMTU bytes.
func TunnelMTU(hostMTU int) int { return hostMTU - Overhead }

// PeerAddrs are the addresses IPIP is accepted from: every node's IPv4
// address, sorted and without duplicates. Nodes without an address are
// skipped.
func PeerAddrs(nodes []model.Node) []netip.Addr {
	out := make([]netip.Addr, 0, len(nodes))
	for _, n := range nodes {
		if n.IPv4.IsValid() && n.IPv4.Addr().Is4() {
			out = append(out, n.IPv4.Addr())
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}
