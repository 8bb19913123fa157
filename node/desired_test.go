package node

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gingham-net/gingham/api/model"
	"github.com/gingham-net/gingham/api/selector"
	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/bgp"
	"github.com/gingham-net/gingham/felix"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

func pool(name, cidr string, mode model.Encap) model.Pool {
	return model.Pool{Name: name, CIDR: pfx(cidr), BlockSize: 26, IPIPMode: mode, NodeSelector: selector.MustParse("all()")}
}

func TestRemoteRoutes(t *testing.T) {
	local := model.Node{Name: "n1", IPv4: pfx("10.0.1.11/24")}
	mesh := []bgp.PeerConfig{{Address: addr("10.0.1.12"), Node: "n2", Type: bgp.PeerTypeMesh}, {Address: addr("10.0.2.21"), Node: "n3", Type: bgp.PeerTypeMesh}}
	tor := []bgp.PeerConfig{{Address: addr("10.0.1.1"), Type: bgp.PeerTypeGlobal}}
	services := []netip.Prefix{pfx("10.96.0.0/12")}
	route := func(p string, from string, nhs ...string) bgp.LearnedRoute {
		r := bgp.LearnedRoute{Prefix: pfx(p), FromPeer: addr(from)}
		for _, nh := range nhs {
			r.NextHops = append(r.NextHops, addr(nh))
		}
		return r
	}
	tests := []struct {
		name      string
		learned   []bgp.LearnedRoute
		peers     []bgp.PeerConfig
		pools     []model.Pool
		tunnelUp  bool
		want      []felix.Route
		wantUnavl map[string]bool
	}{
		{name: "never: direct", learned: []bgp.LearnedRoute{route("10.244.1.0/26", "10.0.1.12", "10.0.1.12")}, peers: mesh,
			pools: []model.Pool{pool("p", "10.244.0.0/16", model.EncapNever)},
			want:  []felix.Route{{Prefix: pfx("10.244.1.0/26"), NextHops: []felix.NextHop{{Gw: addr("10.0.1.12")}}}}},
		{name: "always: tunl0 onlink", learned: []bgp.LearnedRoute{route("10.244.1.0/26", "10.0.1.12", "10.0.1.12")}, peers: mesh, tunnelUp: true,
			pools: []model.Pool{pool("p", "10.244.0.0/16", model.EncapAlways)},
			want:  []felix.Route{{Prefix: pfx("10.244.1.0/26"), NextHops: []felix.NextHop{{Gw: addr("10.0.1.12"), Iface: "tunl0", OnLink: true}}}}},
		{name: "cross-subnet: same subnet direct, other subnet tunnel", peers: mesh, tunnelUp: true,
			learned: []bgp.LearnedRoute{route("10.244.1.0/26", "10.0.1.12", "10.0.1.12"), route("10.244.2.0/26", "10.0.2.21", "10.0.2.21")},
			pools:   []model.Pool{pool("p", "10.244.0.0/16", model.EncapCrossSubnet)},
			want: []felix.Route{{Prefix: pfx("10.244.1.0/26"), NextHops: []felix.NextHop{{Gw: addr("10.0.1.12")}}},
				{Prefix: pfx("10.244.2.0/26"), NextHops: []felix.NextHop{{Gw: addr("10.0.2.21"), Iface: "tunl0", OnLink: true}}}}},
		{name: "ipip pool without tunnel: dropped and reported", learned: []bgp.LearnedRoute{route("10.244.1.0/26", "10.0.1.12", "10.0.1.12"), route("10.245.1.0/26", "10.0.1.12", "10.0.1.12")}, peers: mesh,
			pools: []model.Pool{pool("ipip", "10.244.0.0/16", model.EncapAlways), pool("plain", "10.245.0.0/16", model.EncapNever)},
			want:  []felix.Route{{Prefix: pfx("10.245.1.0/26"), NextHops: []felix.NextHop{{Gw: addr("10.0.1.12")}}}}, wantUnavl: map[string]bool{"ipip": true}},
		{name: "never: next hop in another subnet left out (not on-link)", learned: []bgp.LearnedRoute{route("10.244.2.0/26", "10.0.2.21", "10.0.2.21")}, peers: mesh,
			pools: []model.Pool{pool("p", "10.244.0.0/16", model.EncapNever)}},
		{name: "ecmp kept together", learned: []bgp.LearnedRoute{route("10.244.9.0/26", "10.0.1.12", "10.0.1.12", "10.0.1.13")}, peers: mesh,
			pools: []model.Pool{pool("p", "10.244.0.0/16", model.EncapNever)},
			want:  []felix.Route{{Prefix: pfx("10.244.9.0/26"), NextHops: []felix.NextHop{{Gw: addr("10.0.1.12")}, {Gw: addr("10.0.1.13")}}}}},
		{name: "service range never programmed", learned: []bgp.LearnedRoute{route("10.96.0.0/12", "10.0.1.12", "10.0.1.12")}, peers: mesh,
			pools: []model.Pool{pool("p", "10.244.0.0/16", model.EncapNever)}},
		{name: "pool route from external peer refused", learned: []bgp.LearnedRoute{route("10.244.5.0/26", "10.0.1.1", "10.0.1.1"), route("192.168.0.0/24", "10.0.1.1", "10.0.1.1")}, peers: tor,
			pools: []model.Pool{pool("p", "10.244.0.0/16", model.EncapNever)},
			want:  []felix.Route{{Prefix: pfx("192.168.0.0/24"), NextHops: []felix.NextHop{{Gw: addr("10.0.1.1")}}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, unavl := remoteRoutes(tc.learned, tc.peers, tc.pools, services, local, tc.tunnelUp)
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("routes (-want +got):\n%s", diff)
			}
			if tc.wantUnavl == nil {
				tc.wantUnavl = map[string]bool{}
			}
			if diff := cmp.Diff(tc.wantUnavl, unavl); diff != "" {
				t.Errorf("unavailable (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLocalEndpoints(t *testing.T) {
	mac, _ := net.ParseMAC("02:00:00:00:00:01")
	name := func(ns, pod string) string { return "cali-" + ns + "-" + pod }
	got := localEndpoints(
		[]LocalPod{{Namespace: "a", Name: "p2", IP: addr("10.244.0.2")}, {Namespace: "a", Name: "p1", IP: addr("10.244.0.1")}},
		[]felix.Endpoint{{IP: addr("10.244.0.1"), Iface: "cali-a-p1", MAC: mac, LinkIndex: 7}, {IP: addr("10.244.0.2"), Iface: "other", MAC: mac, LinkIndex: 8}},
		name)
	if len(got) != 2 || got[0].Iface != "cali-a-p1" || got[0].MAC.String() != mac.String() || got[0].LinkIndex != 7 || got[1].MAC != nil || got[1].LinkIndex != 0 {
		t.Fatalf("got %+v: want p1 with its MAC and the link it was read from first, p2 without a MAC (discovered on another interface)", got)
	}
}

func TestRestartTimeDefaultsFromConfig(t *testing.T) {
	const agentDefault = 45 * time.Second
	cfg, _, errs := bgpModel(nil, nil, "n1", agentDefault)
	if got := cfg.MeshRestartTime; got != agentDefault || len(errs) != 0 {
		t.Errorf("mesh restart time without BGPConfiguration = %s (%v), want GINGHAM_GRACEFUL_RESTART_TIME 45s", got, errs)
	}
	set := v1.BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "default"},
		Spec: v1.BGPConfigurationSpec{NodeMeshMaxRestartTime: &metav1.Duration{Duration: 10 * time.Second}}}
	if cfg, _, _ := bgpModel([]v1.BGPConfiguration{set}, nil, "n1", agentDefault); cfg.MeshRestartTime != 10*time.Second {
		t.Errorf("mesh restart time with nodeMeshMaxRestartTime 10s = %s", cfg.MeshRestartTime)
	}
	as := int64(65000)
	_, peers, _ := bgpModel(nil, []v1.BGPPeer{
		{ObjectMeta: metav1.ObjectMeta{Name: "plain"}, Spec: v1.BGPPeerSpec{PeerIP: "10.0.0.1", ASNumber: &as}},
		{ObjectMeta: metav1.ObjectMeta{Name: "explicit"}, Spec: v1.BGPPeerSpec{PeerIP: "10.0.0.2", ASNumber: &as, MaxRestartTime: &metav1.Duration{Duration: 5 * time.Second}}},
	}, "n1", agentDefault)
	got := map[string]time.Duration{}
	for _, p := range peers {
		got[p.Name] = p.RestartTime
	}
	if got["plain"] != agentDefault || got["explicit"] != 5*time.Second {
		t.Errorf("peer restart times = %v, want plain 45s (agent default) and explicit 5s", got)
	}
}

func TestBGPModelReportsInvalidObjects(t *testing.T) {
	port := int32(0)
	bad := v1.BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: v1.BGPConfigurationSpec{ListenPort: &port}}
	as := int64(65000)
	cfg, peers, errs := bgpModel([]v1.BGPConfiguration{bad}, []v1.BGPPeer{
		{ObjectMeta: metav1.ObjectMeta{Name: "ok"}, Spec: v1.BGPPeerSpec{PeerIP: "10.0.0.1", ASNumber: &as}},
		{ObjectMeta: metav1.ObjectMeta{Name: "bad"}, Spec: v1.BGPPeerSpec{PeerIP: "not-an-ip", ASNumber: &as}},
	}, "n1", time.Minute)
	if cfg.ListenPort != model.DefaultBGPPort || len(peers) != 1 || peers[0].Name != "ok" || len(errs) != 2 {
		t.Fatalf("bgpModel = port %d, peers %+v, errors %v; want the defaults, peer ok, two errors", cfg.ListenPort, peers, errs)
	}
}

func TestLocalASN(t *testing.T) {
	cluster := model.BGPConfig{ASNumber: 64512}
	for _, tc := range []struct {
		name      string
		env, node uint32
		want      uint32
	}{
		{"cluster AS when nothing is set", 0, 0, 64512},
		{"the Node's annotation when the agent's variable is unset", 0, 65011, 65011},
		{"GINGHAM_AS wins over the annotation", 65100, 65011, 65100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := localASN(tc.env, model.Node{ASNumber: tc.node}, cluster); got != tc.want {
				t.Fatalf("localASN = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestIdentityAnnotationsNeverDeleteAdminValues(t *testing.T) {
	ip := netip.MustParsePrefix("10.0.1.11/24")
	got := identityAnnotations(Config{}, ip)
	if len(got) != 1 || got[v1.AnnotationIPv4Address] != "10.0.1.11/24" {
		t.Fatalf("unset AS and RR cluster ID must leave those annotations out of the patch (a merge patch with null deletes them): %v", got)
	}
	got = identityAnnotations(Config{ASNumber: 65011, RRClusterID: "1.1.1.1"}, ip)
	if got[v1.AnnotationASNumber] != "65011" || got[v1.AnnotationRouteReflectorClusterID] != "1.1.1.1" {
		t.Fatalf("explicit values must be written: %v", got)
	}
}
