package labnet

import (
	"fmt"
	"strings"
)

// FRRConfig renders bgpd's configuration for an FRR router: datacenter
// defaults (3 s keepalive, 9 s hold), no RFC 8212 policy requirement, one
// explicit neighbor per peer with its AS, the originated networks, and
// ECMP across equal AS-path lengths.
func FRRConfig(r Router) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	p("frr defaults datacenter")
	p("hostname %s", r.Name)
	p("log stdout informational")
	p("!")
	p("router bgp %d", r.AS)
	p(" bgp router-id %s", r.RouterID)
	p(" no bgp ebgp-requires-policy")
	p(" bgp bestpath as-path multipath-relax")
	for _, n := range r.Neighbors {
		p(" neighbor %s remote-as %d", n.Addr, n.AS)
		p(" neighbor %s description %s", n.Addr, n.Name)
	}
	p(" !")
	p(" address-family ipv4 unicast")
	for _, net := range r.Networks {
		p("  network %s", net)
	}
	for _, n := range r.Neighbors {
		p("  neighbor %s activate", n.Addr)
		if n.RRClient {
			p("  neighbor %s route-reflector-client", n.Addr)
		}
	}
	p("  maximum-paths 8")
	p(" exit-address-family")
	p("exit")
	p("!")
	return b.String()
}

// BIRDConfig renders bird.conf for a BIRD router: one BGP protocol per
// neighbor (named after it), import and export of everything (BIRD 2
// requires explicit filters on eBGP), graceful restart, short timers like
// FRR's datacenter defaults, route reflection for RR clients, and a kernel
// protocol when the router forwards (FIB).
func BIRDConfig(r Router) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	p("log stderr all;")
	p("router id %s;", r.RouterID)
	p("")
	p("protocol device { scan time 10; }")
	p("")
	if r.FIB {
		p("protocol kernel {")
		p("  ipv4 { import none; export all; };")
		p("  merge paths on;")
		p("}")
		p("")
	}
	p("template bgp peer {")
	p("  local as %d;", r.AS)
	p("  hold time 9; keepalive time 3; connect retry time 5; error wait time 1, 10;")
	p("  graceful restart on; graceful restart time 10; # short, so a dead peer is noticed in tests")
	p("  ipv4 { import all; export all; };")
	p("}")
	for _, n := range r.Neighbors {
		p("")
		p("protocol bgp %s from peer {", birdProtoName(n))
		p("  description %q;", n.Name)
		p("  neighbor %s as %d;", n.Addr, n.AS)
		if n.AS == r.AS {
			// iBGP to an on-link peer: no recursive next-hop lookup.
			p("  direct;")
			p("  ipv4 { import all; export all; gateway direct; };")
		}
		if n.RRClient {
			p("  rr client;")
			p("  rr cluster id %s;", r.RouterID)
		}
		p("}")
	}
	return b.String()
}

// birdProtoName is the BIRD protocol name of a neighbor (letters, digits
// and underscores).
func birdProtoName(n Neighbor) string {
	return "p_" + strings.NewReplacer("-", "_", ".", "_").Replace(n.Name)
}
