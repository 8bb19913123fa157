package gobgp

import (
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gbgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"github.com/gingham-net/gingham/bgp"
)

type learnedPath struct {
	nextHop netip.Addr
}

// learnedTable regroups GoBGP's best-path events by prefix. GoBGP calls
// apply from one goroutine per watcher (the owner of byPrefix); the mutex
// only lets snapshot read concurrently.
//
// With UseMultiplePaths, GoBGP reports the change of each prefix's
// multipath set as per-path additions and withdrawals (and the initial
// table as all additions): the set of a prefix is keyed by the path's
// source peer, so one table holds the ECMP next hops of every prefix.
type learnedTable struct {
	mu       sync.Mutex
	byPrefix map[netip.Prefix]map[netip.Addr]learnedPath

	routesChanged chan struct{} // cap 1: coalesced pokes
	peersChanged  chan struct{}
}

func newLearnedTable() *learnedTable {
	return &learnedTable{
		byPrefix:      map[netip.Prefix]map[netip.Addr]learnedPath{},
		routesChanged: make(chan struct{}, 1),
		peersChanged:  make(chan struct{}, 1),
	}
}

func (t *learnedTable) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.byPrefix = map[netip.Prefix]map[netip.Addr]learnedPath{}
}

func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (t *learnedTable) peerEvent(*apiutil.WatchEventMessage_PeerEvent, time.Time) {
	poke(t.peersChanged)
}

// apply is GoBGP's OnBestPath callback.
func (t *learnedTable) apply(paths []*apiutil.Path, _ time.Time) {
	t.mu.Lock()
	changed := false
	for _, p := range paths {
		prefix, ok := prefixOf(p.Nlri)
		if !ok {
			continue
		}
		src := p.PeerAddress
		if !src.IsValid() || src.IsUnspecified() {
			continue // our own path
		}
		set := t.byPrefix[prefix]
		if p.Withdrawal {
			if _, ok := set[src]; ok {
				delete(set, src)
				if len(set) == 0 {
					delete(t.byPrefix, prefix)
				}
				changed = true
			}
			continue
		}
		nh, ok := nextHopOf(p.Attrs)
		if !ok {
			continue
		}
		if set == nil {
			set = map[netip.Addr]learnedPath{}
			t.byPrefix[prefix] = set
		}
		lp := learnedPath{nextHop: nh}
		if set[src] != lp {
			set[src] = lp
			changed = true
		}
	}
	t.mu.Unlock()
	if changed {
		poke(t.routesChanged)
	}
}

func (t *learnedTable) snapshot() []bgp.LearnedRoute {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]bgp.LearnedRoute, 0, len(t.byPrefix))
	for prefix, set := range t.byPrefix {
		r := bgp.LearnedRoute{Prefix: prefix}
		for src, lp := range set {
			if !slices.Contains(r.NextHops, lp.nextHop) {
				r.NextHops = append(r.NextHops, lp.nextHop)
			}
			if !r.FromPeer.IsValid() || src.Less(r.FromPeer) {
				r.FromPeer = src
			}
		}
		slices.SortFunc(r.NextHops, func(a, b netip.Addr) int { return a.Compare(b) })
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b bgp.LearnedRoute) int {
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		return a.Prefix.Bits() - b.Prefix.Bits()
	})
	return out
}

func prefixOf(n gbgp.NLRI) (netip.Prefix, bool) {
	switch v := n.(type) {
	case *gbgp.IPAddrPrefix:
		return v.Prefix, v.Prefix.IsValid()
	}
	return netip.Prefix{}, false
}

func nextHopOf(attrs []gbgp.PathAttributeInterface) (netip.Addr, bool) {
	for _, a := range attrs {
		switch v := a.(type) {
		case *gbgp.PathAttributeNextHop:
			return v.Value, v.Value.IsValid()
		case *gbgp.PathAttributeMpReachNLRI:
			return v.Nexthop, v.Nexthop.IsValid()
		}
	}
	return netip.Addr{}, false
}
