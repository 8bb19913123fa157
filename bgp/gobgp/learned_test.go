package gobgp

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gbgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"github.com/gingham-net/gingham/bgp"
)

func TestLearnedSince(t *testing.T) {
	peer := netip.MustParseAddr("10.0.0.2")
	coarse := time.Date(2026, 1, 1, 12, 0, 5, 0, time.UTC) // GoBGP: whole seconds
	exact := coarse.Add(900 * time.Millisecond)
	now := coarse.Add(1100 * time.Millisecond)
	up := func(at time.Time) *apiutil.WatchEventMessage_PeerEvent {
		return &apiutil.WatchEventMessage_PeerEvent{Type: apiutil.PEER_EVENT_STATE,
			Peer: apiutil.Peer{State: apiutil.PeerState{NeighborAddress: peer, SessionState: gbgp.BGP_FSM_ESTABLISHED}}}
	}
	tests := []struct {
		name   string
		events []time.Time // Established events of peer, in order
		coarse time.Time
		now    time.Time
		want   time.Time
	}{
		{name: "watched change of the same transition", events: []time.Time{exact}, coarse: coarse, now: now, want: exact},
		{name: "no event yet: the latest time GoBGP's allows", coarse: coarse, now: now, want: coarse.Add(time.Second)},
		{name: "no event yet, within the second: now", coarse: coarse, now: coarse.Add(300 * time.Millisecond), want: coarse.Add(300 * time.Millisecond)},
		{name: "event of an earlier transition", events: []time.Time{coarse.Add(-10 * time.Second)}, coarse: coarse, now: now, want: coarse.Add(time.Second)},
		{name: "never up", events: []time.Time{exact}, now: now},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lt := newLearnedTable()
			for _, at := range tt.events {
				lt.peerEvent(up(at), at)
			}
			if got := lt.since(peer, bgp.StateEstablished, tt.coarse, tt.now); !got.Equal(tt.want) {
				t.Errorf("since = %s, want %s", got.Format(time.StampMilli), tt.want.Format(time.StampMilli))
			}
		})
	}
	// A later change to another state does not refine Established.
	lt := newLearnedTable()
	lt.peerEvent(up(exact), exact)
	idle := up(exact.Add(10 * time.Millisecond))
	idle.Peer.State.SessionState = gbgp.BGP_FSM_IDLE
	lt.peerEvent(idle, exact.Add(10*time.Millisecond))
	if got := lt.since(peer, bgp.StateEstablished, coarse, now); !got.Equal(coarse.Add(time.Second)) {
		t.Errorf("since after Idle = %s, want the coarse bound", got.Format(time.StampMilli))
	}
}

// TestSessionsSinceExact: a session is never reported as up since before
// a moment it was seen not up. GoBGP's own uptime is truncated to the
// second, which let the agent's "every session quiet for 1s" pass as soon
// as a session came up late in a second, before the peer's table arrived.
func TestSessionsSinceExact(t *testing.T) {
	a := startNode(t, "a", "127.0.0.1", 64512)
	b := startNode(t, "b", "127.0.0.2", 64512)
	reconcile(t, a, bgp.Desired{Peers: []bgp.PeerConfig{a.peerOf(b)}})
	reconcile(t, b, bgp.Desired{Peers: []bgp.PeerConfig{b.peerOf(a)}})
	var notYet time.Time // before the last Sessions call that saw it down
	for deadline := time.Now().Add(15 * time.Second); ; {
		asked := time.Now()
		ss, err := a.sp.Sessions(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(ss) == 1 && ss[0].State == bgp.StateEstablished {
			if ss[0].Since.Before(notYet) || ss[0].Since.After(time.Now()) {
				t.Errorf("Established since %s, but it was not up at %s", ss[0].Since.Format(time.StampMilli), notYet.Format(time.StampMilli))
			}
			return
		}
		notYet = asked
		if time.Now().After(deadline) {
			t.Fatalf("sessions %+v, want Established", ss)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestLearnedEndOfRIB: a peer's End-of-RIB of its unicast family is
// reported with the routes it sent before it and forgotten when its
// session changes state; another family's does not count.
func TestLearnedEndOfRIB(t *testing.T) {
	peer := netip.MustParseAddr("10.0.0.2")
	other := netip.MustParseAddr("10.0.0.3")
	eor := func(from netip.Addr, f gbgp.Family) *apiutil.Path {
		return &apiutil.Path{Family: f, PeerAddress: from, Withdrawal: true}
	}
	route := func(from netip.Addr, p string) []*apiutil.Path {
		nlri, _ := gbgp.NewIPAddrPrefix(netip.MustParsePrefix(p))
		nh, _ := gbgp.NewPathAttributeNextHop(from)
		return []*apiutil.Path{{Family: gbgp.RF_IPv4_UC, Nlri: nlri, PeerAddress: from, Attrs: []gbgp.PathAttributeInterface{nh}}}
	}
	state := func(from netip.Addr, s gbgp.FSMState) *apiutil.WatchEventMessage_PeerEvent {
		return &apiutil.WatchEventMessage_PeerEvent{Type: apiutil.PEER_EVENT_STATE,
			Peer: apiutil.Peer{State: apiutil.PeerState{NeighborAddress: from, SessionState: s}}}
	}
	lt := newLearnedTable()
	now := time.Now()
	steps := []struct {
		name       string
		do         func()
		wantEoR    []netip.Addr
		wantRoutes int
	}{
		{name: "session up, table sent", do: func() {
			lt.peerEvent(state(peer, gbgp.BGP_FSM_ESTABLISHED), now)
			lt.apply(route(peer, "10.244.1.0/26"), now)
		}, wantRoutes: 1},
		{name: "End-of-RIB of another family: not complete", do: func() { lt.endOfRIB(eor(peer, gbgp.RF_IPv6_UC), now) }, wantRoutes: 1},
		{name: "End-of-RIB of IPv4 unicast", do: func() { lt.endOfRIB(eor(peer, gbgp.RF_IPv4_UC), now) }, wantEoR: []netip.Addr{peer}, wantRoutes: 1},
		{name: "another peer's", do: func() { lt.endOfRIB(eor(other, gbgp.RF_IPv4_UC), now) }, wantEoR: []netip.Addr{peer, other}, wantRoutes: 1},
		{name: "session down: forgotten", do: func() { lt.peerEvent(state(peer, gbgp.BGP_FSM_IDLE), now) }, wantEoR: []netip.Addr{other}, wantRoutes: 1},
		{name: "up again: not until it is sent again", do: func() { lt.peerEvent(state(peer, gbgp.BGP_FSM_ESTABLISHED), now) }, wantEoR: []netip.Addr{other}, wantRoutes: 1},
	}
	for _, s := range steps {
		s.do()
		got := lt.snapshot()
		if !slices.Equal(got.EndOfRIB, s.wantEoR) || len(got.Routes) != s.wantRoutes {
			t.Errorf("%s: End-of-RIB %v, %d routes; want %v, %d", s.name, got.EndOfRIB, len(got.Routes), s.wantEoR, s.wantRoutes)
		}
	}
}
