package nat_test

import (
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/gingham-net/gingham/felix/nat"
	"github.com/gingham-net/gingham/internal/netns/netnstest"
)

func TestRules(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		name  string
		pools []nat.Pool
		want  []nat.Rule
	}{
		{"no pools", nil, nil},
		{"no NAT pool", []nat.Pool{{CIDR: p("10.0.0.0/16")}}, nil},
		{"one NAT pool, one plain pool", []nat.Pool{{CIDR: p("10.1.0.0/16")}, {CIDR: p("10.0.0.0/16"), NATOutgoing: true}}, []nat.Rule{
			{Dst: p("10.0.0.0/16")}, {Dst: p("10.1.0.0/16")}, {Src: p("10.0.0.0/16"), Masquerade: true}}},
		{"IPv6 ignored, duplicates merged", []nat.Pool{{CIDR: p("fd00::/48"), NATOutgoing: true}, {CIDR: p("10.0.0.0/16"), NATOutgoing: true}, {CIDR: p("10.0.0.0/16"), NATOutgoing: true}}, []nat.Rule{
			{Dst: p("10.0.0.0/16")}, {Src: p("10.0.0.0/16"), Masquerade: true}}},
	}
	for _, tc := range tests {
		if got := nat.Rules(tc.pools); !slices.Equal(got, tc.want) {
			t.Errorf("%s: Rules = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestPrivilegedTableLifecycle(t *testing.T) {
	netnstest.Privileged(t)
	ns := netnstest.New(t, "nat")
	name := netnstest.Name(ns)
	nft := func(args ...string) string {
		out, err := exec.Command("ip", append([]string{"netns", "exec", name, "nft"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("nft %v: %v: %s", args, err, out)
		}
		return string(out)
	}
	// A foreign table must survive everything we do.
	nft("add", "table", "ip", "other")
	nft("add", "chain", "ip", "other", "c")
	m := nat.New(ns.Fd())
	pools := []nat.Pool{{CIDR: netip.MustParsePrefix("10.244.0.0/16"), NATOutgoing: true}, {CIDR: netip.MustParsePrefix("10.96.0.0/16")}}
	for i := 0; i < 2; i++ {
		if err := m.Apply(pools, true); err != nil {
			t.Fatal(err)
		}
	}
	out := nft("list", "table", "ip", "gingham")
	for _, want := range []string{"type nat hook postrouting priority srcnat", "ip daddr 10.244.0.0/16 return", "ip daddr 10.96.0.0/16 return", "ip saddr 10.244.0.0/16 masquerade"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "masquerade") != 1 {
		t.Errorf("rules duplicated after two applies:\n%s", out)
	}
	if err := m.Apply([]nat.Pool{{CIDR: netip.MustParsePrefix("10.244.0.0/16")}}, false); err != nil {
		t.Fatal(err)
	}
	if ok, err := m.Present(); err != nil || ok {
		t.Fatalf("Present after removing NAT pools = %v, %v", ok, err)
	}
	if err := m.Remove(); err != nil {
		t.Fatalf("second removal: %v", err)
	}
	if !strings.Contains(nft("list", "tables"), "table ip other") {
		t.Fatal("foreign table was removed")
	}
}
