package node

import (
	"fmt"
	"net/netip"
	"sort"

	"github.com/gingham-net/gingham/api/model"
	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/bgp"
	"github.com/gingham-net/gingham/felix"
	"github.com/gingham-net/gingham/felix/nat"
	"github.com/gingham-net/gingham/ipip"
)

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
			if inPool && ipip.Encapsulate(pool.IPIPMode, local.IPv4, nh) {
				if !tunnelUp {
					unavailable[pool.Name] = true
					skip = true
					break
				}
				r.NextHops = append(r.NextHops, ipip.RouteNextHop(pool.IPIPMode, local.IPv4, nh))
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
			ep.MAC, ep.LinkIndex = d.MAC, d.LinkIndex
		}
		out = append(out, ep)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IP.Less(out[j].IP) })
	return out
}

// ipipPools returns the names of pools that ask for IPIP.
func ipipPools(pools []model.Pool) map[string]bool {
	out := map[string]bool{}
	for _, p := range pools {
		if p.IPIPMode != model.EncapNever {
			out[p.Name] = true
		}
	}
	return out
}

// unavailableList reports the named pools as not served, in pool order.
func unavailableList(names map[string]bool, pools []model.Pool, reason string) []v1.PoolCondition {
	var out []v1.PoolCondition
	for _, p := range pools {
		if names[p.Name] {
			out = append(out, v1.PoolCondition{Pool: p.Name, Reason: "IPIPUnavailable",
				Message: fmt.Sprintf("pool %s asks for IPIP (%s) but this node cannot tunnel: %s", p.Name, p.IPIPMode, reason)})
		}
	}
	return out
}
