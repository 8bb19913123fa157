package routetable

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/gingham-net/gingham/internal/netlinkx"
)

// NextHop is one path of a Target, named by interface (indexes change when
// interfaces are recreated; names are resolved at Apply time).
type NextHop struct {
	Iface  string     // outgoing interface; "" lets the kernel choose by Gw
	Gw     netip.Addr // invalid for a device (scope link) route
	OnLink bool       // the gateway is reachable on Iface without a connected subnet (IPIP: dev tunl0 onlink)
}

// Target is one desired route.
type Target struct {
	Dst       netip.Prefix
	Blackhole bool      // drop traffic: no next hops
	NextHops  []NextHop // one for a plain route, several for ECMP
	MTU       int       // 0: no route MTU
}

func (t Target) String() string {
	if t.Blackhole {
		return "blackhole " + t.Dst.String()
	}
	var b strings.Builder
	b.WriteString(t.Dst.String())
	for _, nh := range t.NextHops {
		if len(t.NextHops) > 1 {
			b.WriteString(" nexthop")
		}
		if nh.Gw.IsValid() {
			b.WriteString(" via " + nh.Gw.String())
		}
		if nh.Iface != "" {
			b.WriteString(" dev " + nh.Iface)
		}
		if nh.OnLink {
			b.WriteString(" onlink")
		} else if !nh.Gw.IsValid() {
			b.WriteString(" scope link")
		}
	}
	return b.String()
}

// Validate reports a Target that cannot be programmed.
func (t Target) Validate() error {
	switch {
	case !t.Dst.IsValid() || t.Dst.Masked() != t.Dst:
		return fmt.Errorf("route %s: destination must be a masked prefix", t.Dst)
	case t.Blackhole && len(t.NextHops) > 0:
		return fmt.Errorf("route %s: a blackhole has no next hops", t.Dst)
	case !t.Blackhole && len(t.NextHops) == 0:
		return fmt.Errorf("route %s: needs a next hop", t.Dst)
	}
	for _, nh := range t.NextHops {
		if nh.Iface == "" && !nh.Gw.IsValid() {
			return fmt.Errorf("route %s: a next hop needs an interface or a gateway", t.Dst)
		}
		if nh.OnLink && (nh.Iface == "" || !nh.Gw.IsValid()) {
			return fmt.Errorf("route %s: onlink needs an interface and a gateway", t.Dst)
		}
		if len(t.NextHops) > 1 && !nh.Gw.IsValid() {
			return fmt.Errorf("route %s: every ECMP next hop needs a gateway", t.Dst)
		}
	}
	return nil
}

// resolve turns t into the kernel route it should be, given interface
// indexes. ok is false while an interface it needs is missing or down.
func resolve(t *Target, links map[string]netlinkx.Link, table, proto, priority int) (r netlinkx.Route, ok bool) {
	r = netlinkx.Route{Dst: t.Dst, Table: table, Protocol: proto, Priority: priority, Type: netlinkx.RouteUnicast, MTU: t.MTU}
	if t.Blackhole {
		r.Type = netlinkx.RouteBlackhole
		return r, true
	}
	hop := func(nh NextHop) (netlinkx.NextHop, bool) {
		out := netlinkx.NextHop{Gw: nh.Gw, OnLink: nh.OnLink}
		if nh.Iface != "" {
			l, ok := links[nh.Iface]
			if !ok || !l.Up {
				return out, false
			}
			out.LinkIndex = l.Index
		}
		return out, true
	}
	if len(t.NextHops) == 1 {
		p, ok := hop(t.NextHops[0])
		if !ok {
			return r, false
		}
		r.Path = p
		if !p.Gw.IsValid() {
			r.Scope = netlinkx.ScopeLink
		}
		return r, true
	}
	for _, nh := range t.NextHops {
		if p, ok := hop(nh); ok {
			r.MultiPath = append(r.MultiPath, p)
		}
	}
	switch len(r.MultiPath) {
	case 0:
		return r, false
	case 1: // the kernel stores a one-path multipath route as a plain route
		r.Path, r.MultiPath = r.MultiPath[0], nil
	default:
		slices.SortFunc(r.MultiPath, compareHop)
	}
	return r, true
}

func compareHop(a, b netlinkx.NextHop) int {
	if c := cmp.Compare(a.LinkIndex, b.LinkIndex); c != 0 {
		return c
	}
	return a.Gw.Compare(b.Gw)
}

// sameRoute reports whether the kernel route have already is want.
func sameRoute(have, want *netlinkx.Route) bool {
	if have.Type != want.Type || have.Priority != want.Priority || have.MTU != want.MTU ||
		!sameHop(have.Path, want.Path) || len(have.MultiPath) != len(want.MultiPath) {
		return false
	}
	if want.Type == netlinkx.RouteUnicast && have.Scope != want.Scope {
		return false
	}
	for _, w := range want.MultiPath { // order-insensitive: a few hops at most
		if !slices.ContainsFunc(have.MultiPath, func(h netlinkx.NextHop) bool { return sameHop(h, w) }) {
			return false
		}
	}
	return true
}

// sameHop compares an observed hop with a desired one. A desired hop named
// by gateway only (LinkIndex 0) lets the kernel choose the interface, and
// the kernel reports the one it chose: any interface matches then.
func sameHop(have, want netlinkx.NextHop) bool {
	return have.Gw == want.Gw && have.OnLink == want.OnLink &&
		(want.LinkIndex == 0 || have.LinkIndex == want.LinkIndex)
}
