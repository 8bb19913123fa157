package node

import (
	"net/netip"
	"sort"

	"github.com/gingham-net/gingham/api/model"
	"github.com/gingham-net/gingham/bgp"
	"github.com/gingham-net/gingham/felix"
	"github.com/gingham-net/gingham/felix/nat"
)

// TunnelDevice is the IPIP device remote routes of IPIP pools go through.
const TunnelDevice = "tunl0"

// remoteRoutes turns learned BGP routes into kernel routes: routes that may
// not be imported are dropped; each next hop is direct (when on-link: inside
// this node's subnet; other next hops are left out), or through tunl0
// (onlink) when the route's pool asks for IPIP towards that next hop
// (Always, or CrossSubnet and the next hop outside this node's subnet).
// Routes of IPIP pools are dropped when this node has no tunnel; their pools
// are returned as unavailable.
func remoteRoutes(learned []bgp.LearnedRoute, peers []bgp.PeerConfig, pools []model.Pool, services []netip.Prefix,
	local model.Node, tunnelUp bool) (routes []felix.Route, unavailable map[string]bool) {
	byAddr := make(map[netip.Addr]bgp.PeerConfig, len(peers))
	for _, p := range peers {
		byAddr[p.Address] = p
	}
	unavailable = map[string]bool{}
	for _, lr := range learned {
		if !bgp.Importable(lr, pools, services, byAddr[lr.FromPeer]) {
			continue
		}
		pool, inPool := model.PoolFor(pools, lr.Prefix.Addr())
		r := felix.Route{Prefix: lr.Prefix}
		skip := false
		for _, nh := range lr.NextHops {
			if inPool && wantsTunnel(pool.IPIPMode, local.IPv4, nh) {
				if !tunnelUp {
					unavailable[pool.Name] = true
					skip = true
					break
				}
				r.NextHops = append(r.NextHops, felix.NextHop{Gw: nh, Iface: TunnelDevice, OnLink: true})
				continue
			}
			if local.IPv4.IsValid() && !local.IPv4.Masked().Contains(nh) {
				// Not on-link: the kernel would refuse `via nh`. The
				// route is left out and traffic follows the node's own
				// routing (its default route to a router that knows the
				// block, e.g. a ToR peering with the nodes).
				continue
			}
			r.NextHops = append(r.NextHops, felix.NextHop{Gw: nh})
		}
		if !skip && len(r.NextHops) > 0 {
			routes = append(routes, r)
		}
	}
	return routes, unavailable
}

// wantsTunnel says whether traffic to a remote node at nh is encapsulated.
func wantsTunnel(mode model.Encap, localSubnet netip.Prefix, nh netip.Addr) bool {
	switch mode {
	case model.EncapAlways:
		return true
	case model.EncapCrossSubnet:
		return !localSubnet.IsValid() || !localSubnet.Masked().Contains(nh)
	}
	return false
}

// natPools is what natOutgoing needs of the pools.
func natPools(pools []model.Pool) []nat.Pool {
	out := make([]nat.Pool, 0, len(pools))
	for _, p := range pools {
		out = append(out, nat.Pool{CIDR: p.CIDR, NATOutgoing: p.NATOutgoing})
	}
	return out
}

// affinities are this node's confirmed blocks, as BGP export wants them.
func affinities(blocks []netip.Prefix) []bgp.Affinity {
	out := make([]bgp.Affinity, 0, len(blocks))
	for _, b := range blocks {
		out = append(out, bgp.Affinity{CIDR: b})
	}
	return out
}

// localEndpoints joins the API's view of this node's pods (address, veth
// name from namespace and pod) with the kernel's (the pod MAC from the
// neighbour entry the CNI plugin wrote).
func localEndpoints(pods []LocalPod, discovered []felix.Endpoint, vethName func(ns, pod string) string) []felix.Endpoint {
	macByIP := map[netip.Addr]felix.Endpoint{}
	for _, d := range discovered {
		macByIP[d.IP] = d
	}
	out := make([]felix.Endpoint, 0, len(pods))
	for _, p := range pods {
		ep := felix.Endpoint{IP: p.IP, Iface: vethName(p.Namespace, p.Name)}
		if d, ok := macByIP[p.IP]; ok && d.Iface == ep.Iface {
			ep.MAC = d.MAC
		}
		out = append(out, ep)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IP.Less(out[j].IP) })
	return out
}
