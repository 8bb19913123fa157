package felix

import (
	"net"
	"net/netip"
	"testing"

	"github.com/gingham-net/gingham/felix/routetable"
)

func TestDesiredRoutesPriority(t *testing.T) {
	p := netip.MustParsePrefix
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	got := DesiredRoutes(
		[]Endpoint{{IP: netip.MustParseAddr("10.0.0.1"), Iface: "cali1", MAC: mac}, {IP: netip.MustParseAddr("fd00::1"), Iface: "cali2"}},
		[]netip.Prefix{p("10.0.0.0/26"), p("10.0.0.1/32")},
		[]Route{{Prefix: p("10.0.0.0/26"), NextHops: []NextHop{{Gw: netip.MustParseAddr("192.168.0.2")}}}, {Prefix: p("10.0.1.0/26")}},
	)
	rt := routetable.New(nil)
	if err := rt.SetRoutes(got); err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.1/32 dev cali1 scope link", "blackhole 10.0.0.0/26", "blackhole 10.0.0.1/32", "10.0.0.0/26 via 192.168.0.2"}
	if len(got) != len(want) {
		t.Fatalf("DesiredRoutes = %v", got)
	}
	for i, w := range want {
		if got[i].String() != w {
			t.Errorf("target %d = %q, want %q", i, got[i], w)
		}
	}
}

func TestPodMTU(t *testing.T) {
	tests := []struct {
		name                     string
		detected, override, want int
		ipip                     bool
	}{
		{"plain", 1500, 0, 1500, false},
		{"ipip", 1500, 0, 1480, true},
		{"gce ipip", 1460, 0, 1440, true},
		{"override wins", 1500, 9000, 8980, true},
		{"nothing detected", 0, 0, FallbackMTU, false},
	}
	for _, tc := range tests {
		if got := PodMTU(tc.detected, tc.override, tc.ipip); got != tc.want {
			t.Errorf("%s: PodMTU = %d, want %d", tc.name, got, tc.want)
		}
	}
}
