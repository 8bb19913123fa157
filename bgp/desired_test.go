package bgp

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gingham-net/gingham/api/model"
	"github.com/gingham-net/gingham/api/selector"
	v1 "github.com/gingham-net/gingham/api/v1"
)

var netipCmp = cmp.Options{
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
}

func node(name, addr string, labels ...string) model.Node {
	n := model.Node{Name: name, IPv4: netip.MustParsePrefix(addr + "/24"), Labels: map[string]string{}}
	for i := 0; i+1 < len(labels); i += 2 {
		n.Labels[labels[i]] = labels[i+1]
	}
	return n
}

func rr(n model.Node, cluster string) model.Node {
	n.RRClusterID = netip.MustParseAddr(cluster)
	n.Labels["rr"] = "true"
	return n
}

func sel(s string) *selector.Selector { v := selector.MustParse(s); return &v }

func a(s string) netip.Addr { return netip.MustParseAddr(s) }

func defaultPeer(name string) model.Peer {
	return model.Peer{Name: name, UseNodeIP: true, RestartTime: model.DefaultRestartTime, Keepalive: model.DefaultKeepalive, HoldTime: 3 * model.DefaultKeepalive}
}

// meshPeer is what the mesh yields from local "me" to n.
func meshPeer(me, n model.Node, passive bool) PeerConfig {
	return PeerConfig{Address: n.IPv4.Addr(), Port: 179, ASN: 64512, LocalASN: 64512, Type: PeerTypeMesh, Node: n.Name,
		Passive: passive, RestartTime: model.DefaultRestartTime, SourceAddr: me.IPv4.Addr()}
}

func TestDesiredPeers(t *testing.T) {
	n1, n2, n3 := node("n1", "10.0.0.1"), node("n2", "10.0.0.2"), node("n3", "10.0.0.3")
	cfg := model.DefaultBGPConfig()
	noMesh := cfg
	noMesh.MeshEnabled = false

	tor := defaultPeer("tor")
	tor.PeerAddr = netip.MustParseAddrPort("10.0.0.254:179")
	tor.ASNumber = 65000
	tor.MaxPrefixes = 100
	torWant := func(me model.Node, typ PeerType) PeerConfig {
		return PeerConfig{Address: a("10.0.0.254"), Port: 179, ASN: 65000, LocalASN: 64512, Type: typ, Source: "tor",
			RestartTime: model.DefaultRestartTime, Keepalive: model.DefaultKeepalive, Hold: 3 * model.DefaultKeepalive,
			MaxPrefixes: 100, SourceAddr: me.IPv4.Addr(), Multihop: 255}
	}
	torRack1 := tor
	torRack1.NodeSelector = sel("rack == 'r1'")

	rrPeering := defaultPeer("rr-clients") // RRs peer with everything that is not an RR
	rrPeering.NodeSelector = sel("has(rr)")
	rrPeering.PeerSelector = sel("!has(rr)")

	cases := []struct {
		name  string
		local model.Node
		nodes []model.Node
		peers []model.Peer
		cfg   model.BGPConfig
		want  []PeerConfig
	}{
		{
			name: "mesh: the lower address dials, the higher listens", local: n2, nodes: []model.Node{n1, n2, n3}, cfg: cfg,
			want: []PeerConfig{meshPeer(n2, n1, true), meshPeer(n2, n3, false)},
		},
		{
			name: "node without address has no peers", local: model.Node{Name: "x"}, nodes: []model.Node{n1}, cfg: cfg,
		},
		{
			name: "nodes without address are skipped", local: n1, nodes: []model.Node{n1, {Name: "x"}}, cfg: cfg,
			want: []PeerConfig{},
		},
		{
			name:  "per-node AS makes mesh sessions eBGP with multihop",
			local: n1, cfg: cfg,
			nodes: []model.Node{n1, func() model.Node { n := n2; n.ASNumber = 65002; return n }()},
			want:  []PeerConfig{func() PeerConfig { p := meshPeer(n1, n2, false); p.ASN = 65002; p.Multihop = 255; return p }()},
		},
		{
			name: "global peer plus mesh", local: n1, nodes: []model.Node{n1, n2}, peers: []model.Peer{tor}, cfg: cfg,
			want: []PeerConfig{meshPeer(n1, n2, false), torWant(n1, PeerTypeGlobal)},
		},
		{
			name: "nodeSelector peer applies to matching nodes only", local: node("n1", "10.0.0.1", "rack", "r1"),
			peers: []model.Peer{torRack1}, cfg: noMesh,
			want: []PeerConfig{torWant(n1, PeerTypeNodeSpecific)},
		},
		{
			name: "nodeSelector peer skips other racks", local: node("n1", "10.0.0.1", "rack", "r2"),
			peers: []model.Peer{torRack1}, cfg: noMesh, want: []PeerConfig{},
		},
		{
			name:  "route reflector: clients are RR clients, RRs of the same cluster non-clients, RR out of mesh",
			local: rr(node("r1", "10.0.0.10"), "1.0.0.1"), cfg: cfg,
			nodes: []model.Node{n1, rr(node("r2", "10.0.0.11"), "1.0.0.1"), rr(node("r1", "10.0.0.10"), "1.0.0.1")},
			peers: []model.Peer{rrPeering, func() model.Peer {
				p := defaultPeer("rr-mesh")
				p.NodeSelector = sel("has(rr)")
				p.PeerSelector = sel("has(rr)")
				return p
			}()},
			want: []PeerConfig{
				{Address: a("10.0.0.1"), Port: 179, ASN: 64512, LocalASN: 64512, Type: PeerTypeRouteReflector, Node: "n1", Source: "rr-clients",
					Passive: true, RRClient: true, ClusterID: a("1.0.0.1"), RestartTime: model.DefaultRestartTime,
					Keepalive: model.DefaultKeepalive, Hold: 3 * model.DefaultKeepalive, SourceAddr: a("10.0.0.10")},
				{Address: a("10.0.0.11"), Port: 179, ASN: 64512, LocalASN: 64512, Type: PeerTypeRouteReflector, Node: "r2", Source: "rr-mesh",
					Passive: false, RestartTime: model.DefaultRestartTime,
					Keepalive: model.DefaultKeepalive, Hold: 3 * model.DefaultKeepalive, SourceAddr: a("10.0.0.10")},
			},
		},
		{
			name:  "route reflector client: reverse peering to the RR, mesh with non-RRs only",
			local: n1, nodes: []model.Node{n1, n2, rr(node("r1", "10.0.0.10"), "1.0.0.1")}, peers: []model.Peer{rrPeering}, cfg: cfg,
			want: []PeerConfig{
				meshPeer(n1, n2, false),
				{Address: a("10.0.0.10"), Port: 179, ASN: 64512, LocalASN: 64512, Type: PeerTypeRouteReflector, Node: "r1", Source: "rr-clients",
					RestartTime: model.DefaultRestartTime, Keepalive: model.DefaultKeepalive, Hold: 3 * model.DefaultKeepalive, SourceAddr: a("10.0.0.1")},
			},
		},
		{
			name: "explicit peerIP wins over the mesh for the same address", local: n1, nodes: []model.Node{n1, n2}, cfg: cfg,
			peers: []model.Peer{func() model.Peer {
				p := defaultPeer("n2-explicit")
				p.PeerAddr, p.ASNumber = netip.MustParseAddrPort("10.0.0.2:179"), 64512
				return p
			}()},
			want: []PeerConfig{{Address: a("10.0.0.2"), Port: 179, ASN: 64512, LocalASN: 64512, Type: PeerTypeGlobal, Source: "n2-explicit",
				RestartTime: model.DefaultRestartTime, Keepalive: model.DefaultKeepalive, Hold: 3 * model.DefaultKeepalive, SourceAddr: a("10.0.0.1")}},
		},
		{
			name: "mesh password and restart time come from the configuration", local: n1, nodes: []model.Node{n1, n2},
			cfg: func() model.BGPConfig {
				c := cfg
				c.MeshPassword = model.SecretRef{Name: "s", Key: "k"}
				c.MeshRestartTime = 30e9
				return c
			}(),
			want: []PeerConfig{func() PeerConfig {
				p := meshPeer(n1, n2, false)
				p.PasswordRef, p.RestartTime = model.SecretRef{Name: "s", Key: "k"}, 30e9
				return p
			}()},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := DesiredPeers(tc.local, tc.nodes, tc.peers, tc.cfg)
			if d := cmp.Diff(tc.want, got, netipCmp); d != "" {
				t.Errorf("(-want +got)\n%s", d)
			}
		})
	}
}

// TestDesiredPeersOneSideDials checks, over a whole mesh, that for every
// pair exactly one side is passive.
func TestDesiredPeersOneSideDials(t *testing.T) {
	nodes := []model.Node{node("a", "10.0.0.9"), node("b", "10.0.0.10"), node("c", "10.0.1.2"), node("d", "10.0.0.100")}
	passive := map[[2]string]bool{}
	for _, n := range nodes {
		for _, p := range DesiredPeers(n, nodes, nil, model.DefaultBGPConfig()) {
			passive[[2]string{n.Name, p.Node}] = p.Passive
		}
	}
	for k, v := range passive {
		if passive[[2]string{k[1], k[0]}] == v {
			t.Errorf("%s and %s: both passive=%v", k[0], k[1], v)
		}
	}
	if len(passive) != 12 {
		t.Errorf("got %d sessions, want 12", len(passive))
	}
}

func TestDesiredPaths(t *testing.T) {
	n1 := node("n1", "10.0.0.1")
	pool := model.Pool{Name: "p", CIDR: netip.MustParsePrefix("10.244.0.0/16")}
	quiet := model.Pool{Name: "q", CIDR: netip.MustParsePrefix("10.250.0.0/16"), DisableBGPExport: true}
	pools := []model.Pool{pool, quiet}
	cfg := model.DefaultBGPConfig()
	comm := model.Community{Value: [3]uint32{65000, 1}}
	large := model.Community{Large: true, Value: [3]uint32{65000, 1, 2}}
	cfgAdv := cfg
	cfgAdv.PrefixAdvertisements = []model.PrefixAdvertisement{
		{CIDR: netip.MustParsePrefix("10.244.0.0/16"), Communities: []model.Community{comm}},
		{CIDR: netip.MustParsePrefix("10.244.1.0/24"), Communities: []model.Community{comm, large}},
	}
	cfgSvc := cfg
	cfgSvc.ServiceClusterIPs = []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12"), netip.MustParsePrefix("fd00::/108")}
	p := func(s string, cs ...model.Community) Path {
		return Path{Prefix: netip.MustParsePrefix(s), NextHop: a("10.0.0.1"), Communities: cs}
	}
	aff := func(s string, st v1.BlockAffinityState) Affinity {
		return Affinity{CIDR: netip.MustParsePrefix(s), State: st}
	}

	cases := []struct {
		name  string
		affs  []Affinity
		pods  []netip.Addr
		cfg   model.BGPConfig
		local model.Node
		want  []Path
	}{
		{
			name: "confirmed blocks only, own pods suppressed, borrowed exported",
			affs: []Affinity{aff("10.244.0.0/26", v1.AffinityConfirmed), aff("10.244.0.64/26", ""), aff("10.244.0.128/26", v1.AffinityPending), aff("10.244.0.192/26", v1.AffinityPendingDeletion)},
			pods: []netip.Addr{a("10.244.0.5"), a("10.244.0.70"), a("10.244.9.9")},
			cfg:  cfg, local: n1,
			want: []Path{p("10.244.0.0/26"), p("10.244.0.64/26"), p("10.244.9.9/32")},
		},
		{
			name: "disableBGPExport pools never exported, nor addresses outside pools",
			affs: []Affinity{aff("10.250.0.0/26", "")}, pods: []netip.Addr{a("10.250.1.1"), a("192.168.1.1")},
			cfg: cfg, local: n1, want: []Path{},
		},
		{
			name: "communities from every containing prefixAdvertisement",
			affs: []Affinity{aff("10.244.0.0/26", ""), aff("10.244.1.0/26", "")},
			cfg:  cfgAdv, local: n1,
			want: []Path{p("10.244.0.0/26", comm), p("10.244.1.0/26", comm, large)},
		},
		{
			name: "service cluster IPs of the node's family", cfg: cfgSvc, local: n1,
			want: []Path{p("10.96.0.0/12")},
		},
		{name: "no address, no paths", affs: []Affinity{aff("10.244.0.0/26", "")}, cfg: cfg, local: model.Node{Name: "x"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := DesiredPaths(tc.local, tc.affs, tc.pods, pools, tc.cfg)
			if d := cmp.Diff(tc.want, got, netipCmp); d != "" {
				t.Errorf("(-want +got)\n%s", d)
			}
		})
	}
}

func TestImportable(t *testing.T) {
	pools := []model.Pool{{CIDR: netip.MustParsePrefix("10.244.0.0/16")}}
	svc := []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12")}
	meshPeer := PeerConfig{Node: "n2"}
	tor := PeerConfig{Address: a("10.0.0.254")}
	torAllowed := PeerConfig{Address: a("10.0.0.254"), AllowPoolRoutes: true}
	cases := []struct {
		name   string
		prefix string
		from   PeerConfig
		want   bool
	}{
		{"block from a node", "10.244.1.0/26", meshPeer, true},
		{"service range from a node", "10.96.0.0/12", meshPeer, false},
		{"service /32 from a router", "10.96.0.10/32", tor, false},
		{"pool block from a router", "10.244.1.0/26", tor, false},
		{"pool block from a router that may send them", "10.244.1.0/26", torAllowed, true},
		{"default route from a router", "0.0.0.0/0", tor, true},
		{"external prefix from a router", "192.168.0.0/24", tor, true},
		{"unknown peer counts as external", "10.244.1.0/26", PeerConfig{}, false},
	}
	for _, tc := range cases {
		r := LearnedRoute{Prefix: netip.MustParsePrefix(tc.prefix)}
		if got := Importable(r, pools, svc, tc.from); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestPeerConfigStringRedactsPassword(t *testing.T) {
	s := PeerConfig{Address: a("10.0.0.2"), ASN: 1, Password: "s3cret"}.String()
	if want := "10.0.0.2:179 AS1 () password=<redacted>"; s != want {
		t.Errorf("got %q, want %q", s, want)
	}
}
