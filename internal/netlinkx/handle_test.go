package netlinkx_test

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gingham-net/gingham/internal/netlinkx"
	"github.com/gingham-net/gingham/internal/netns/netnstest"
)

func TestPrivilegedHandleRoutesLinksNeighbours(t *testing.T) {
	netnstest.Privileged(t)
	host := netnstest.New(t, "h")
	peer := netnstest.New(t, "p")
	h, err := netlinkx.Open(host.Fd())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	mac, _ := net.ParseMAC("ee:ee:ee:ee:ee:ee")
	if err := h.AddVeth(netlinkx.VethSpec{Name: "veth0", MAC: mac, MTU: 1400, PeerName: "eth0", PeerNsFd: peer.Fd()}); err != nil {
		t.Fatal(err)
	}
	l, err := h.LinkByName("veth0")
	if err != nil {
		t.Fatal(err)
	}
	if l.MTU != 1400 || l.MAC.String() != mac.String() || l.Kind != "veth" {
		t.Fatalf("link = %+v", l)
	}
	if _, err := h.LinkByName("nope"); !errors.Is(err, netlinkx.ErrNotFound) {
		t.Fatalf("LinkByName(nope) = %v, want ErrNotFound", err)
	}
	if err := h.LinkSetUp(l.Index); err != nil {
		t.Fatal(err)
	}
	if err := h.AddrAdd(l.Index, netip.MustParsePrefix("10.9.0.1/24")); err != nil {
		t.Fatal(err)
	}
	routes := []netlinkx.Route{
		{Dst: netip.MustParsePrefix("10.1.0.0/26"), Protocol: 96, Type: netlinkx.RouteBlackhole},
		{Dst: netip.MustParsePrefix("10.1.0.5/32"), Protocol: 96, Type: netlinkx.RouteUnicast, Scope: netlinkx.ScopeLink, Path: netlinkx.NextHop{LinkIndex: l.Index}},
		{Dst: netip.MustParsePrefix("10.2.0.0/26"), Protocol: 96, Type: netlinkx.RouteUnicast, Path: netlinkx.NextHop{LinkIndex: l.Index, Gw: netip.MustParseAddr("10.9.0.2")}},
		{Dst: netip.MustParsePrefix("10.3.0.0/26"), Protocol: 96, Type: netlinkx.RouteUnicast, Path: netlinkx.NextHop{LinkIndex: l.Index, Gw: netip.MustParseAddr("192.168.7.7"), OnLink: true}},
		{Dst: netip.MustParsePrefix("10.4.0.0/26"), Protocol: 96, Type: netlinkx.RouteUnicast, MultiPath: []netlinkx.NextHop{
			{LinkIndex: l.Index, Gw: netip.MustParseAddr("10.9.0.2")}, {LinkIndex: l.Index, Gw: netip.MustParseAddr("10.9.0.3")}}},
	}
	for i := range routes {
		if err := h.RouteReplace(&routes[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.RouteAdd(&routes[0]); !errors.Is(err, unix.EEXIST) {
		t.Fatalf("second add = %v, want EEXIST", err)
	}
	got, err := h.RouteList(netlinkx.RouteFilter{Protocol: 96})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(routes) {
		t.Fatalf("got %d routes, want %d: %+v", len(got), len(routes), got)
	}
	for i, want := range routes {
		g := got[slices.IndexFunc(got, func(r netlinkx.Route) bool { return r.Dst == want.Dst })]
		if g.Type != want.Type || g.Path != want.Path || !slices.Equal(g.MultiPath, want.MultiPath) || g.Table != netlinkx.TableMain {
			t.Errorf("route %d: got %+v, want %+v", i, g, want)
		}
	}
	if err := h.RouteDel(&routes[0]); err != nil {
		t.Fatal(err)
	}
	if err := h.RouteDel(&routes[0]); !errors.Is(err, netlinkx.ErrNotFound) {
		t.Fatalf("second delete = %v, want ErrNotFound", err)
	}
	n := netlinkx.Neigh{LinkIndex: l.Index, IP: netip.MustParseAddr("10.1.0.5"), MAC: net.HardwareAddr{2, 0, 0, 0, 0, 5}}
	if err := h.NeighSetPermanent(n); err != nil {
		t.Fatal(err)
	}
	ns, err := h.NeighList(l.Index)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(ns, func(x netlinkx.Neigh) bool { return x.IP == n.IP && x.Permanent && x.MAC.String() == n.MAC.String() }) {
		t.Fatalf("neighbours = %+v", ns)
	}
	// The peer landed in the other namespace.
	if err := peer.Do(func() error {
		ph, err := netlinkx.Open(-1)
		if err != nil {
			return err
		}
		defer ph.Close()
		_, err = ph.LinkByName("eth0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
