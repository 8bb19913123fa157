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

// learnedTable regroups GoBGP's best-path events by prefix and records each
// peer's End-of-RIB. GoBGP calls apply, endOfRIB and peerEvent from the one
// goroutine of our watcher, in the order it handled the messages (a peer's
// routes before its End-of-RIB, its session coming up before both); the
// mutex only lets snapshot read concurrently, so a snapshot holding a
// peer's End-of-RIB holds every route the peer sent before it.
//
// With UseMultiplePaths, GoBGP reports the change of each prefix's
// multipath set as per-path additions and withdrawals (and the initial
// table as all additions): the set of a prefix is keyed by the path's
// source peer, so one table holds the ECMP next hops of every prefix.
type learnedTable struct {
	mu       sync.Mutex
	byPrefix map[netip.Prefix]map[netip.Addr]learnedPath
	// changes is each peer's last watched state change, at full
	// precision: GoBGP's own uptime and downtime keep whole seconds.
	changes map[netip.Addr]stateChange
	// eor holds the peers whose End-of-RIB arrived in their current
	// session.
	eor map[netip.Addr]bool

	routesChanged chan struct{} // cap 1: coalesced pokes
	peersChanged  chan struct{}
}

func newLearnedTable() *learnedTable {
	return &learnedTable{
		byPrefix:      map[netip.Prefix]map[netip.Addr]learnedPath{},
		changes:       map[netip.Addr]stateChange{},
		eor:           map[netip.Addr]bool{},
		routesChanged: make(chan struct{}, 1),
		peersChanged:  make(chan struct{}, 1),
	}
}

func (t *learnedTable) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.byPrefix = map[netip.Prefix]map[netip.Addr]learnedPath{}
	t.changes = map[netip.Addr]stateChange{}
	t.eor = map[netip.Addr]bool{}
}

func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// stateChange is when a peer entered a session state.
type stateChange struct {
	state bgp.SessionState
	at    time.Time
}

// peerEvent is GoBGP's OnPeerUpdate callback: it records state changes
// with their exact time, forgets the peer's End-of-RIB (a new session
// sends its table again) and pokes the session watchers.
func (t *learnedTable) peerEvent(ev *apiutil.WatchEventMessage_PeerEvent, at time.Time) {
	if ev != nil && ev.Type == apiutil.PEER_EVENT_STATE {
		peer := ev.Peer.State.NeighborAddress.Unmap()
		t.mu.Lock()
		t.changes[peer] = stateChange{state: stateFromFSM(ev.Peer.State.SessionState), at: at}
		had := t.eor[peer]
		delete(t.eor, peer)
		t.mu.Unlock()
		if had {
			poke(t.routesChanged)
		}
	}
	poke(t.peersChanged)
}

// endOfRIB is GoBGP's OnPathEor callback: the peer has sent its whole
// table for the family. Only unicast of the peer's own address family
// counts (the one family a session carries).
func (t *learnedTable) endOfRIB(p *apiutil.Path, _ time.Time) {
	if p == nil {
		return
	}
	peer := p.PeerAddress.Unmap()
	if !peer.IsValid() || p.Family != family(peer) {
		return
	}
	t.mu.Lock()
	t.eor[peer] = true
	t.mu.Unlock()
	poke(t.routesChanged)
}

// since refines coarse, GoBGP's whole-second time of peer entering state,
// with the watched change when it is the same transition. Without one (its
// event not delivered yet) it returns the latest time coarse allows, never
// after now, so "up for at least d" is never overstated: a session seen
// Established at 12:00:05.9 is not up for a second at 12:00:06.0.
func (t *learnedTable) since(peer netip.Addr, state bgp.SessionState, coarse, now time.Time) time.Time {
	if coarse.IsZero() {
		return coarse
	}
	t.mu.Lock()
	c, ok := t.changes[peer]
	t.mu.Unlock()
	if ok && c.state == state && !c.at.Before(coarse) && c.at.Before(coarse.Add(time.Second)) {
		return c.at
	}
	if latest := coarse.Add(time.Second); latest.Before(now) {
		return latest
	}
	return now
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

// snapshot returns the learned routes and End-of-RIBs at one moment.
func (t *learnedTable) snapshot() bgp.Learned {
	t.mu.Lock()
	defer t.mu.Unlock()
	var eor []netip.Addr
	for peer := range t.eor {
		eor = append(eor, peer)
	}
	slices.SortFunc(eor, func(a, b netip.Addr) int { return a.Compare(b) })
	return bgp.Learned{Routes: t.routes(), EndOfRIB: eor}
}

// routes returns the learned best routes, sorted; t.mu is held.
func (t *learnedTable) routes() []bgp.LearnedRoute {
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
