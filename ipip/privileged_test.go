package ipip_test

import (
	"errors"
	"net/netip"
	"os"
	"slices"
	"testing"

	"github.com/gingham-net/gingham/felix/nat"
	"github.com/gingham-net/gingham/internal/netlinkx"
	"github.com/gingham-net/gingham/internal/netns/netnstest"
	"github.com/gingham-net/gingham/ipip"
)

// hasIPIP reports whether the kernel running the tests has ipip; the host
// kernel of the development machines does not (the VM test covers that).
func hasIPIP(t *testing.T) bool {
	t.Helper()
	ok, err := ipip.Supported()
	if err != nil {
		t.Fatalf("Supported: %v", err)
	}
	return ok
}

func TestPrivilegedSupportedMatchesKernel(t *testing.T) {
	netnstest.Privileged(t)
	_, modErr := os.Stat("/sys/module/ipip")
	got := hasIPIP(t)
	if modErr == nil && !got {
		t.Errorf("Supported = false but the ipip module is loaded")
	}
	t.Logf("Supported() = %v on this kernel", got)
}

func TestPrivilegedManagerUnsupportedLeavesNothing(t *testing.T) {
	netnstest.Privileged(t)
	if hasIPIP(t) {
		t.Skip("kernel has ipip; the unsupported path is covered by the unit tests")
	}
	ns := netnstest.New(t, "ipip")
	m, err := ipip.NewManager(ns.Fd())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for range 2 { // twice: the second attempt must fail the same way
		st, err := m.Apply(ipip.Desired{Enabled: true, Addr: netip.MustParseAddr("10.2.0.1"), MTU: 1480})
		if !errors.Is(err, ipip.ErrUnsupported) {
			t.Fatalf("Apply = %v, want ErrUnsupported", err)
		}
		if st.Ready || len(st.Actions) != 0 {
			t.Errorf("status = %+v, want nothing done", st)
		}
	}
	if _, err := m.Apply(ipip.Desired{}); err != nil {
		t.Errorf("Apply(disabled) = %v", err)
	}
	h, err := netlinkx.Open(ns.Fd())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != 1 || links[0].Name != "lo" {
		t.Errorf("links after failed create = %+v, want only lo", links)
	}
}

func TestPrivilegedFilterCreateReplaceRemove(t *testing.T) {
	netnstest.Privileged(t)
	ns := netnstest.New(t, "ipipf")
	f := ipip.NewFilter(ns.Fd())
	// felix/nat's table lives next to ours; neither replace may touch the other.
	n := nat.New(ns.Fd())
	if err := n.Apply([]nat.Pool{{CIDR: netip.MustParsePrefix("10.2.0.0/16"), NATOutgoing: true}}, false); err != nil {
		t.Fatal(err)
	}
	a, b, c := netip.MustParseAddr("192.168.1.11"), netip.MustParseAddr("192.168.1.12"), netip.MustParseAddr("192.168.2.21")
	steps := []struct {
		name   string
		run    func() error
		want   ipip.FilterState
		natTbl bool
	}{
		{name: "create", run: func() error { return f.Apply([]netip.Addr{b, a, a}, false) }, want: ipip.FilterState{Present: true, Peers: []netip.Addr{a, b}}, natTbl: true},
		{name: "same peers: no rewrite needed", run: func() error { return f.Apply([]netip.Addr{a, b}, false) }, want: ipip.FilterState{Present: true, Peers: []netip.Addr{a, b}}, natTbl: true},
		{name: "replace", run: func() error { return f.Apply([]netip.Addr{c, a}, false) }, want: ipip.FilterState{Present: true, Peers: []netip.Addr{a, c}}, natTbl: true},
		{name: "felix/nat replaces its table", run: func() error {
			return n.Apply([]nat.Pool{{CIDR: netip.MustParsePrefix("10.3.0.0/16"), NATOutgoing: true}}, true)
		}, want: ipip.FilterState{Present: true, Peers: []netip.Addr{a, c}}, natTbl: true},
		{name: "no peers: drop all IPIP", run: func() error { return f.Apply(nil, false) }, want: ipip.FilterState{Present: true}, natTbl: true},
		{name: "remove", run: f.Remove, want: ipip.FilterState{}, natTbl: true},
		{name: "remove again", run: f.Remove, want: ipip.FilterState{}, natTbl: true},
		{name: "forced recreate", run: func() error { return f.Apply([]netip.Addr{a}, true) }, want: ipip.FilterState{Present: true, Peers: []netip.Addr{a}}, natTbl: true},
		{name: "felix/nat removes its table", run: n.Remove, want: ipip.FilterState{Present: true, Peers: []netip.Addr{a}}},
	}
	for _, s := range steps {
		if err := s.run(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		got, err := f.State()
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got.Present != s.want.Present || !slices.Equal(got.Peers, s.want.Peers) || got.Dropped != 0 {
			t.Errorf("%s: filter = %+v, want %+v", s.name, got, s.want)
		}
		if present, err := n.Present(); err != nil || present != s.natTbl {
			t.Errorf("%s: nat table present = %v (%v), want %v", s.name, present, err, s.natTbl)
		}
	}
}
