package model

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gingham-net/gingham/api/selector"
	v1 "github.com/gingham-net/gingham/api/v1"
)

var netipCmp = cmp.Options{
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b }),
	cmp.Comparer(func(a, b selector.Selector) bool { return a.String() == b.String() }),
}

func TestBGPConfigFromAPI(t *testing.T) {
	cases := []struct {
		name      string
		def, node *v1.BGPConfigurationSpec
		want      BGPConfig
		wantField string // non-empty: expect a FieldError naming this field
	}{
		{name: "no objects: Calico defaults", want: DefaultBGPConfig()},
		{
			name: "default object with everything",
			def: &v1.BGPConfigurationSpec{
				NodeToNodeMeshEnabled:  ptr(false),
				ASNumber:               ptr(int64(65001)),
				ListenPort:             ptr(int32(1179)),
				ServiceClusterIPs:      []v1.ServiceClusterIPBlock{{CIDR: "10.96.0.0/12"}},
				Communities:            []v1.Community{{Name: "rack", Value: "65001:100"}},
				PrefixAdvertisements:   []v1.PrefixAdvertisement{{CIDR: "10.244.0.0/16", Communities: []string{"rack", "1:2:3"}}},
				NodeMeshMaxRestartTime: &metav1.Duration{Duration: 30 * time.Second},
			},
			want: BGPConfig{
				ASNumber: 65001, MeshEnabled: false, ListenPort: 1179, LogSeverity: "Info",
				ServiceClusterIPs: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12")},
				PrefixAdvertisements: []PrefixAdvertisement{{
					CIDR:        netip.MustParsePrefix("10.244.0.0/16"),
					Communities: []Community{{Value: [3]uint32{65001, 100}}, {Large: true, Value: [3]uint32{1, 2, 3}}},
				}},
				MeshRestartTime: 30 * time.Second,
			},
		},
		{
			name: "node override wins field by field",
			def:  &v1.BGPConfigurationSpec{ASNumber: ptr(int64(65001)), NodeMeshPassword: &v1.BGPPassword{SecretKeyRef: &v1.SecretKeyRef{Name: "s", Key: "k"}}},
			node: &v1.BGPConfigurationSpec{ListenPort: ptr(int32(2179)), LogSeverityScreen: "Debug"},
			want: BGPConfig{ASNumber: 65001, MeshEnabled: true, ListenPort: 2179, LogSeverity: "Debug", MeshPassword: SecretRef{Name: "s", Key: "k"}, MeshRestartTime: DefaultRestartTime},
		},
		{name: "bad AS", def: &v1.BGPConfigurationSpec{ASNumber: ptr(int64(0))}, wantField: "spec.asNumber"},
		{name: "unmasked service CIDR", def: &v1.BGPConfigurationSpec{ServiceClusterIPs: []v1.ServiceClusterIPBlock{{CIDR: "10.96.0.1/12"}}}, wantField: "spec.serviceClusterIPs[0].cidr"},
		{name: "unknown community name", def: &v1.BGPConfigurationSpec{PrefixAdvertisements: []v1.PrefixAdvertisement{{CIDR: "10.0.0.0/8", Communities: []string{"nope"}}}}, wantField: "spec.prefixAdvertisements[0].communities[0]"},
		{name: "standard community over 16 bits", def: &v1.BGPConfigurationSpec{Communities: []v1.Community{{Name: "x", Value: "70000:1"}}}, wantField: "spec.communities[0].value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var def, node *v1.BGPConfiguration
			if tc.def != nil {
				def = &v1.BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: *tc.def}
			}
			if tc.node != nil {
				node = &v1.BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "node.a"}, Spec: *tc.node}
			}
			got, err := BGPConfigFromAPI(def, node)
			checkFieldErr(t, err, tc.wantField)
			if tc.wantField != "" {
				return
			}
			if d := cmp.Diff(tc.want, got, netipCmp); d != "" {
				t.Errorf("(-want +got)\n%s", d)
			}
		})
	}
}

func checkFieldErr(t *testing.T, err error, field string) {
	t.Helper()
	if field == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != field || !errors.Is(err, ErrInvalid) {
		t.Fatalf("error %v: want a FieldError for %s", err, field)
	}
}

func TestPeerFromAPI(t *testing.T) {
	base := Peer{Name: "p", NextHopMode: NextHopAuto, UseNodeIP: true, RestartTime: DefaultRestartTime, Keepalive: DefaultKeepalive, HoldTime: 3 * DefaultKeepalive}
	with := func(f func(*Peer)) Peer { p := base; f(&p); return p }
	sel := func(s string) *selector.Selector { v := selector.MustParse(s); return &v }
	cases := []struct {
		name      string
		spec      v1.BGPPeerSpec
		want      Peer
		wantField string
	}{
		{
			name: "global peer by IP gets port 179",
			spec: v1.BGPPeerSpec{PeerIP: "192.0.2.1", ASNumber: ptr(int64(65000))},
			want: with(func(p *Peer) { p.PeerAddr = netip.MustParseAddrPort("192.0.2.1:179"); p.ASNumber = 65000 }),
		},
		{
			name: "node peer IP:port with options",
			spec: v1.BGPPeerSpec{
				Node: "a", PeerIP: "192.0.2.1:1790", ASNumber: ptr(int64(65000)), LocalASNumber: ptr(int64(65100)),
				KeepaliveTime: &metav1.Duration{Duration: 2 * time.Second}, MaxRestartTime: &metav1.Duration{Duration: time.Minute},
				TTLSecurity: ptr(int32(2)), MaxPrefixes: ptr(int32(100)), AllowPoolRoutes: true, SourceAddress: "None",
				Password: &v1.BGPPassword{SecretKeyRef: &v1.SecretKeyRef{Name: "bgp", Key: "pw"}}, ReachableBy: "192.0.2.254",
				KeepOriginalNextHop: true,
			},
			want: with(func(p *Peer) {
				p.Node = "a"
				p.PeerAddr = netip.MustParseAddrPort("192.0.2.1:1790")
				p.ASNumber, p.LocalASNumber = 65000, 65100
				p.Keepalive, p.HoldTime, p.RestartTime = 2*time.Second, 6*time.Second, time.Minute
				p.TTLSecurity, p.MaxPrefixes, p.AllowPoolRoutes, p.UseNodeIP = 2, 100, true, false
				p.Password = SecretRef{Name: "bgp", Key: "pw"}
				p.ReachableBy = netip.MustParseAddr("192.0.2.254")
				p.NextHopMode = NextHopKeep
			}),
		},
		{
			name: "IPv6 with port",
			spec: v1.BGPPeerSpec{PeerIP: "[2001:db8::1]:1179", ASNumber: ptr(int64(65000))},
			want: with(func(p *Peer) { p.PeerAddr = netip.MustParseAddrPort("[2001:db8::1]:1179"); p.ASNumber = 65000 }),
		},
		{
			name: "selector peering",
			spec: v1.BGPPeerSpec{NodeSelector: "!has(rr)", PeerSelector: "has(rr)"},
			want: with(func(p *Peer) { p.NodeSelector = sel("!has(rr)"); p.PeerSelector = sel("has(rr)") }),
		},
		{name: "bad peerIP", spec: v1.BGPPeerSpec{PeerIP: "1.2.3", ASNumber: ptr(int64(1))}, wantField: "spec.peerIP"},
		{name: "peerIP without AS", spec: v1.BGPPeerSpec{PeerIP: "192.0.2.1"}, wantField: "spec.asNumber"},
		{name: "neither peerIP nor selector", spec: v1.BGPPeerSpec{}, wantField: "spec.peerIP"},
		{name: "AS with peerSelector", spec: v1.BGPPeerSpec{PeerSelector: "all()", ASNumber: ptr(int64(1))}, wantField: "spec.asNumber"},
		{name: "bad selector", spec: v1.BGPPeerSpec{PeerSelector: "has(("}, wantField: "spec.peerSelector"},
		{name: "reachableBy family", spec: v1.BGPPeerSpec{PeerIP: "192.0.2.1", ASNumber: ptr(int64(1)), ReachableBy: "::1"}, wantField: "spec.reachableBy"},
		{name: "keepalive too short", spec: v1.BGPPeerSpec{PeerIP: "192.0.2.1", ASNumber: ptr(int64(1)), KeepaliveTime: &metav1.Duration{Duration: time.Millisecond}}, wantField: "spec.keepaliveTime"},
		{name: "ttl security range", spec: v1.BGPPeerSpec{PeerIP: "192.0.2.1", ASNumber: ptr(int64(1)), TTLSecurity: ptr(int32(0))}, wantField: "spec.ttlSecurity"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PeerFromAPI(&v1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: tc.spec})
			checkFieldErr(t, err, tc.wantField)
			if tc.wantField != "" {
				return
			}
			if d := cmp.Diff(tc.want, got, netipCmp); d != "" {
				t.Errorf("(-want +got)\n%s", d)
			}
		})
	}
}

func TestPeersCollectsErrors(t *testing.T) {
	good := v1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "good"}, Spec: v1.BGPPeerSpec{PeerIP: "192.0.2.1", ASNumber: ptr(int64(1))}}
	bad := v1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "bad"}}
	got, errs := Peers([]v1.BGPPeer{bad, good})
	if len(got) != 1 || got[0].Name != "good" || len(errs) != 1 || !strings.Contains(errs[0].Error(), "BGPPeer bad") {
		t.Fatalf("got %v, errs %v", got, errs)
	}
}

func TestPeerAppliesTo(t *testing.T) {
	sel := selector.MustParse("rack == 'r1'")
	n := Node{Name: "a", Labels: map[string]string{"rack": "r1"}}
	for _, tc := range []struct {
		name string
		p    Peer
		want bool
	}{
		{"global", Peer{}, true},
		{"this node", Peer{Node: "a"}, true},
		{"other node", Peer{Node: "b"}, false},
		{"selector matches", Peer{NodeSelector: &sel}, true},
		{"selector misses", Peer{NodeSelector: &sel}, false},
	} {
		node := n
		if tc.name == "selector misses" {
			node.Labels = map[string]string{"rack": "r2"}
		}
		if got := tc.p.AppliesTo(node); got != tc.want {
			t.Errorf("%s: got %v", tc.name, got)
		}
	}
}
