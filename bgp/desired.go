package bgp

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/gingham-net/gingham/api/model"
	v1 "github.com/gingham-net/gingham/api/v1"
)

// ebgpMultihopTTL is the TTL of eBGP sessions without TTL security, as
// Calico's "multihop" (nodes of different racks are not adjacent).
const ebgpMultihopTTL = 255

// DesiredPeers returns the sessions node local should have, sorted by
// address. nodes may include local. A node without an IPv4 address has no
// sessions and is no one's peer.
func DesiredPeers(local model.Node, nodes []model.Node, peers []model.Peer, cfg model.BGPConfig) []PeerConfig {
	if !local.IPv4.IsValid() {
		return nil
	}
	me := local.IPv4.Addr()
	localAS := asOf(local, cfg)
	out := map[netip.Addr]PeerConfig{}
	add := func(pc PeerConfig) {
		if pc.Address == me {
			return
		}
		if _, dup := out[pc.Address]; !dup {
			out[pc.Address] = pc
		}
	}
	peers = slices.Clone(peers)
	slices.SortFunc(peers, func(a, b model.Peer) int { return strings.Compare(a.Name, b.Name) })
	others := make([]model.Node, 0, len(nodes))
	for _, n := range nodes {
		if n.Name != local.Name && n.IPv4.IsValid() {
			others = append(others, n)
		}
	}
	slices.SortFunc(others, func(a, b model.Node) int { return strings.Compare(a.Name, b.Name) })

	// 1. Explicit peerIP peerings: global ones first, then node-specific.
	for _, global := range []bool{true, false} {
		for _, p := range peers {
			if p.PeerAddr.IsValid() && p.IsGlobal() == global && p.AppliesTo(local) {
				add(externalPeer(local, localAS, p))
			}
		}
	}
	// 2. Selector peerings with other nodes, in both directions (Calico's
	// automatic reverse peering).
	for i := range peers {
		p := &peers[i]
		if p.PeerSelector == nil {
			continue
		}
		for _, n := range others {
			forward := p.AppliesTo(local) && p.PeerSelector.Matches(n.Labels)
			reverse := p.AppliesTo(n) && p.PeerSelector.Matches(local.Labels)
			if forward || reverse {
				add(nodePeer(local, localAS, n, cfg, p))
			}
		}
	}
	// 3. The node-to-node mesh, without route reflectors.
	if cfg.MeshEnabled && !local.IsRouteReflector() {
		for _, n := range others {
			if !n.IsRouteReflector() {
				add(nodePeer(local, localAS, n, cfg, nil))
			}
		}
	}
	res := make([]PeerConfig, 0, len(out))
	for _, pc := range out {
		res = append(res, pc)
	}
	slices.SortFunc(res, func(a, b PeerConfig) int { return a.Address.Compare(b.Address) })
	return res
}

func asOf(n model.Node, cfg model.BGPConfig) uint32 {
	if n.ASNumber != 0 {
		return n.ASNumber
	}
	return cfg.ASNumber
}

// nodePeer is a session with another gingham node; p is nil for the mesh.
func nodePeer(local model.Node, localAS uint32, n model.Node, cfg model.BGPConfig, p *model.Peer) PeerConfig {
	me := local.IPv4.Addr()
	pc := PeerConfig{
		Address:     n.IPv4.Addr(),
		Port:        cfg.ListenPort,
		ASN:         asOf(n, cfg),
		LocalASN:    localAS,
		Type:        PeerTypeMesh,
		Node:        n.Name,
		Passive:     me.Compare(n.IPv4.Addr()) > 0, // the lower address dials
		PasswordRef: cfg.MeshPassword,
		RestartTime: cfg.MeshRestartTime,
		SourceAddr:  me,
	}
	if p != nil {
		pc.Source = p.Name
		pc.Type = PeerTypeNodeSpecific
		if p.IsGlobal() {
			pc.Type = PeerTypeGlobal
		}
		if local.IsRouteReflector() || n.IsRouteReflector() {
			pc.Type = PeerTypeRouteReflector
		}
		if p.LocalASNumber != 0 {
			pc.LocalASN = p.LocalASNumber
		}
		pc.PasswordRef = p.Password
		pc.RestartTime = p.RestartTime
		pc.Keepalive, pc.Hold = p.Keepalive, p.HoldTime
		pc.TTLSecurity = p.TTLSecurity
		if !p.UseNodeIP {
			pc.SourceAddr = netip.Addr{}
		}
	}
	if local.IsRouteReflector() && pc.ASN == pc.LocalASN && n.RRClusterID != local.RRClusterID {
		pc.RRClient, pc.ClusterID = true, local.RRClusterID
	}
	setMultihop(&pc)
	return pc
}

// externalPeer is a session with a peerIP (a router, or anything that is
// not a gingham node).
func externalPeer(local model.Node, localAS uint32, p model.Peer) PeerConfig {
	pc := PeerConfig{
		Address:         p.PeerAddr.Addr(),
		Port:            p.PeerAddr.Port(),
		ASN:             p.ASNumber,
		LocalASN:        localAS,
		Type:            PeerTypeNodeSpecific,
		Source:          p.Name,
		PasswordRef:     p.Password,
		TTLSecurity:     p.TTLSecurity,
		Keepalive:       p.Keepalive,
		Hold:            p.HoldTime,
		RestartTime:     p.RestartTime,
		MaxPrefixes:     p.MaxPrefixes,
		AllowPoolRoutes: p.AllowPoolRoutes,
	}
	if p.IsGlobal() {
		pc.Type = PeerTypeGlobal
	}
	if p.LocalASNumber != 0 {
		pc.LocalASN = p.LocalASNumber
	}
	if me := local.IPv4.Addr(); p.UseNodeIP && me.Is4() == pc.Address.Is4() {
		pc.SourceAddr = me
	}
	if local.IsRouteReflector() && pc.ASN == pc.LocalASN {
		pc.RRClient, pc.ClusterID = true, local.RRClusterID
	}
	setMultihop(&pc)
	return pc
}

func setMultihop(pc *PeerConfig) {
	if pc.ASN != pc.LocalASN && pc.TTLSecurity == 0 {
		pc.Multihop = ebgpMultihopTTL
	}
}

// Affinity is a block affine to this node.
type Affinity struct {
	CIDR  netip.Prefix
	State v1.BlockAffinityState // "" counts as confirmed, as in Calico
}

func (a Affinity) confirmed() bool { return a.State == "" || a.State == v1.AffinityConfirmed }

// DesiredPaths returns what node local originates, sorted by prefix:
//   - each confirmed block affine to it, in a pool that exports;
//   - each local pod address outside those blocks (borrowed) as a host
//     route, if its pool exports; addresses inside them are suppressed;
//   - the service cluster IP ranges;
//
// all with next hop = the node's address and the communities of every
// prefixAdvertisement containing the prefix.
func DesiredPaths(local model.Node, affinities []Affinity, podIPs []netip.Addr, pools []model.Pool, cfg model.BGPConfig) []Path {
	if !local.IPv4.IsValid() {
		return nil
	}
	nh := local.IPv4.Addr()
	exports := func(p netip.Prefix) bool {
		for _, pool := range pools {
			if pool.CIDR.Contains(p.Addr()) && pool.CIDR.Bits() <= p.Bits() {
				return !pool.DisableBGPExport
			}
		}
		return false
	}
	set := map[netip.Prefix]bool{}
	var blocks []netip.Prefix
	for _, a := range affinities {
		if a.confirmed() && exports(a.CIDR) {
			set[a.CIDR.Masked()] = true
			blocks = append(blocks, a.CIDR)
		}
	}
	for _, ip := range podIPs {
		inBlock := slices.ContainsFunc(blocks, func(b netip.Prefix) bool { return b.Contains(ip) })
		host := netip.PrefixFrom(ip, ip.BitLen())
		if !inBlock && exports(host) {
			set[host] = true
		}
	}
	for _, svc := range cfg.ServiceClusterIPs {
		if svc.Addr().Is4() == nh.Is4() {
			set[svc] = true
		}
	}
	out := make([]Path, 0, len(set))
	for p := range set {
		out = append(out, Path{Prefix: p, NextHop: nh, Communities: communitiesFor(p, cfg.PrefixAdvertisements)})
	}
	slices.SortFunc(out, func(a, b Path) int { return comparePrefix(a.Prefix, b.Prefix) })
	return out
}

func communitiesFor(p netip.Prefix, pas []model.PrefixAdvertisement) []model.Community {
	var out []model.Community
	for _, pa := range pas {
		if inside(p, pa.CIDR) {
			for _, c := range pa.Communities {
				if !slices.Contains(out, c) {
					out = append(out, c)
				}
			}
		}
	}
	return out
}

// inside reports whether p is outer or a more-specific of it.
func inside(p, outer netip.Prefix) bool {
	return outer.Bits() <= p.Bits() && outer.Contains(p.Addr())
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// Importable reports whether a learned route may be programmed into the
// kernel: never inside the service CIDRs (every node advertises those), and
// inside an IP pool only from gingham nodes or external peers that set
// AllowPoolRoutes. from is the session the route came from (the zero value
// counts as external).
func Importable(r LearnedRoute, pools []model.Pool, serviceCIDRs []netip.Prefix, from PeerConfig) bool {
	for _, svc := range serviceCIDRs {
		if inside(r.Prefix, svc) {
			return false
		}
	}
	if from.External() && !from.AllowPoolRoutes {
		for _, pool := range pools {
			if inside(r.Prefix, pool.CIDR) {
				return false
			}
		}
	}
	return true
}
