package node

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gingham-net/gingham/api/model"
	"github.com/gingham-net/gingham/bgp"
)

// planSummary is what a plan decides, in a form a table can spell out.
type planSummary struct {
	Peers         []string // address, then "pw=<password>" when set
	Skipped, Kept []string
	Paths         []string
	Remote        []string // prefix > next hops; "(partial)" while incomplete
	Blocks        []string
	Unavailable   []string
	Problems      []string
	Complete      bool
	CompleteNote  string
	Ready         bool
	Detail        string
	Wake          time.Duration // after Now; 0: none
	PodMTUIPIP    bool
	TunnelFull    bool
}

func summarize(in Inputs, p Plan) planSummary {
	var s planSummary
	for _, pc := range p.BGP.Peers {
		e := pc.Address.String()
		if pc.Password != "" {
			e += " pw=" + pc.Password
		}
		s.Peers = append(s.Peers, e)
	}
	for _, sk := range p.Skipped {
		s.Skipped = append(s.Skipped, sk.Peer.Address.String())
	}
	for _, k := range p.Kept {
		s.Kept = append(s.Kept, k.Peer.Address.String())
	}
	for _, path := range p.BGP.Paths {
		s.Paths = append(s.Paths, path.Prefix.String())
	}
	for _, r := range p.Dataplane.Remote {
		e := r.Prefix.String() + " >"
		for _, nh := range r.NextHops {
			e += " " + nh.Gw.String()
			if nh.Iface != "" {
				e += " dev " + nh.Iface
			}
		}
		if !p.Dataplane.RemoteComplete {
			e += " (partial)"
		}
		s.Remote = append(s.Remote, e)
	}
	for _, b := range p.Dataplane.Blocks {
		s.Blocks = append(s.Blocks, b.String())
	}
	for _, u := range p.Unavailable {
		s.Unavailable = append(s.Unavailable, u.Pool)
	}
	s.Problems = p.Problems
	s.Complete, s.CompleteNote = p.LearnedComplete, p.CompleteNote
	s.Ready, s.Detail = verdict(p, nil)
	if !p.Wake.IsZero() {
		s.Wake = p.Wake.Sub(in.Now)
	}
	s.PodMTUIPIP, s.TunnelFull = p.PodMTUIPIP, p.Tunnel.Full
	return s
}

// baseInputs is node n1 of meshSnapshot 10s after start: its session to
// n2 up for 5s, n2's block and End-of-RIB learned, felix applied, routes
// complete.
func baseInputs() Inputs {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := start.Add(10 * time.Second)
	return Inputs{
		Now:              now,
		Config:           PlanConfig{NodeName: "n1", NodeIP: n1Addr, ASN: model.DefaultASNumber, InterfacePrefix: "cali", ResyncInterval: 90 * time.Second, Started: start},
		Snapshot:         meshSnapshot(),
		Learned:          bgp.Learned{Routes: []bgp.LearnedRoute{learnedRoute(n2Block, n2)}, EndOfRIB: []netip.Addr{n2}},
		Sessions:         []bgp.SessionStatus{{Peer: n2, State: bgp.StateEstablished, Type: bgp.PeerTypeMesh, Since: now.Add(-5 * time.Second)}},
		DataplaneApplied: true, LearnedComplete: true, LastFull: now,
	}
}

func TestPlan(t *testing.T) {
	ok := planSummary{
		Peers: []string{"10.0.0.12"}, Paths: []string{"10.244.1.0/26"}, Remote: []string{"10.244.2.0/26 > 10.0.0.12"},
		Blocks: []string{"10.244.1.0/26"}, Complete: true, Ready: true, Detail: "ok: 1 BGP sessions established",
	}
	ipipPool := model.Pool{Name: "tunnelled", CIDR: netip.MustParsePrefix("10.245.0.0/16"), BlockSize: 26, IPIPMode: model.EncapAlways}
	for _, tc := range []struct {
		name string
		in   func(*Inputs)
		want func(*planSummary)
	}{
		{name: "steady state", in: func(*Inputs) {}, want: func(*planSummary) {}},
		{name: "mesh password resolved",
			in: func(in *Inputs) {
				in.Snapshot.BGP.MeshPassword = model.SecretRef{Name: "mesh", Key: "pw"}
				in.Secrets = map[string]SecretRead{"mesh": {Data: map[string][]byte{"pw": []byte("s3")}}}
			},
			want: func(s *planSummary) { s.Peers = []string{"10.0.0.12 pw=s3"} }},
		{name: "password Secret missing: peer skipped, its routes are not programmed",
			in: func(in *Inputs) {
				in.Snapshot.BGP.MeshPassword = model.SecretRef{Name: "mesh", Key: "pw"}
				in.Secrets = map[string]SecretRead{"mesh": {Err: errors.New("not found")}}
			},
			want: func(s *planSummary) { s.Peers, s.Skipped, s.Remote = nil, []string{"10.0.0.12"}, nil }},
		{name: "password Secret unreadable: the password last read is kept",
			in: func(in *Inputs) {
				in.Snapshot.BGP.MeshPassword = model.SecretRef{Name: "mesh", Key: "pw"}
				in.Secrets = map[string]SecretRead{"mesh": {Data: map[string][]byte{"pw": []byte("old")}, Err: errUnreachable}}
			},
			want: func(s *planSummary) { s.Peers, s.Kept = []string{"10.0.0.12 pw=old"}, []string{"10.0.0.12"} }},
		{name: "AS changed while running: unready until restarted",
			in: func(in *Inputs) { in.Snapshot.BGP.ASNumber = 65001 },
			want: func(s *planSummary) {
				s.Problems = []string{"AS number changed from 64512 to 65001: restart the agent to apply it"}
				s.Ready, s.Detail = false, s.Problems[0]
			}},
		{name: "own Node not yet annotated: the configured address is used",
			in: func(in *Inputs) { in.Snapshot.Local = model.Node{Name: "n1"} }, want: func(*planSummary) {}},
		{name: "IPIP pool without a tunnel: its routes dropped, the pool reported",
			in: func(in *Inputs) {
				in.Snapshot.Pools = append(in.Snapshot.Pools, ipipPool)
				in.Learned.Routes = append(in.Learned.Routes, learnedRoute(netip.MustParsePrefix("10.245.2.0/26"), n2))
				in.Tunnel = TunnelState{Reason: "no ipip module"}
			},
			want: func(s *planSummary) {
				s.Unavailable = []string{"tunnelled"}
				s.Detail += "; IPIP pools not served on this node (no ipip module): tunnelled"
			}},
		{name: "IPIP pool with the tunnel up: via tunl0, pod MTU for IPIP",
			in: func(in *Inputs) {
				in.Snapshot.Pools = append(in.Snapshot.Pools, ipipPool)
				in.Learned.Routes = append(in.Learned.Routes, learnedRoute(netip.MustParsePrefix("10.245.2.0/26"), n2))
				in.Tunnel = TunnelState{Up: true}
			},
			want: func(s *planSummary) {
				s.Remote = append(s.Remote, "10.245.2.0/26 > 10.0.0.12 dev tunl0")
				s.PodMTUIPIP = true
			}},
		{name: "filter reasserted after the resync interval",
			in:   func(in *Inputs) { in.LastFull = in.Now.Add(-90 * time.Second) },
			want: func(s *planSummary) { s.TunnelFull = true }},
		{name: "felix has not applied yet",
			in:   func(in *Inputs) { in.DataplaneApplied = false },
			want: func(s *planSummary) { s.Ready, s.Detail = false, "waiting for the first dataplane apply" }},
		{name: "sessions unreadable",
			in:   func(in *Inputs) { in.Sessions, in.SessionsErr = nil, errors.New("bgp speaker not running") },
			want: func(s *planSummary) { s.Ready, s.Detail = false, "bgp sessions: bgp speaker not running" }},
		{name: "session down", in: func(in *Inputs) { in.Sessions[0].State = bgp.StateActive },
			want: func(s *planSummary) {
				s.Ready, s.Detail = false, "BGP not established with 10.0.0.12 (node-to-node mesh) Active"
			}},

		// Restart gating: deletions of learned routes wait until the set is
		// complete, never on a timer short of the deferral time.
		{name: "restart: session not up yet: partial until the deadline",
			in:   func(in *Inputs) { restarted(in, 2*time.Second); in.Sessions[0].State = bgp.StateConnect },
			want: func(s *planSummary) { partial(s, "10.0.0.12"); s.Wake = learnedDeadline - 2*time.Second }},
		{name: "restart: session up for seconds, its table not in: partial",
			in: func(in *Inputs) { restarted(in, 5*time.Second); in.Learned.Routes = nil },
			want: func(s *planSummary) {
				partial(s, "10.0.0.12")
				s.Remote = nil
				s.Wake = learnedDeadline - 5*time.Second
			}},
		{name: "restart: End-of-RIB from the peer: complete",
			in:   func(in *Inputs) { restarted(in, 2*time.Second); in.Learned.EndOfRIB = []netip.Addr{n2} },
			want: func(s *planSummary) { s.CompleteNote = "End-of-RIB from every BGP session (or the session failed)" }},
		{name: "restart: End-of-RIB from one of two peers: partial, waiting for the other",
			in: func(in *Inputs) {
				restarted(in, 2*time.Second)
				in.Snapshot.Nodes = append(in.Snapshot.Nodes, model.Node{Name: "n3", IPv4: netip.MustParsePrefix("10.0.0.13/24")})
				in.Learned.EndOfRIB = []netip.Addr{n2}
				in.Sessions = append(in.Sessions, bgp.SessionStatus{Peer: netip.MustParseAddr("10.0.0.13"), State: bgp.StateEstablished})
			},
			want: func(s *planSummary) {
				s.Peers = append(s.Peers, "10.0.0.13")
				partial(s, "10.0.0.13")
				s.Wake = learnedDeadline - 2*time.Second
			}},
		{name: "restart: session was up and failed before its End-of-RIB: complete",
			in: func(in *Inputs) {
				restarted(in, 2*time.Second)
				in.Sessions[0].State, in.Sessions[0].Flaps = bgp.StateActive, 1
			},
			want: func(s *planSummary) {
				s.CompleteNote = "End-of-RIB from every BGP session (or the session failed)"
				s.Ready, s.Detail = false, "BGP not established with 10.0.0.12 (node-to-node mesh) Active"
			}},
		{name: "restart: no session configured: complete at once",
			in: func(in *Inputs) {
				restarted(in, 0)
				in.Snapshot.Nodes, in.Sessions, in.Learned = in.Snapshot.Nodes[:1], nil, bgp.Learned{}
			},
			want: func(s *planSummary) {
				s.Peers, s.Remote, s.CompleteNote, s.Detail = nil, nil, "no BGP session configured", "ok: 0 BGP sessions established"
			}},
		{name: "restart: deadline passed without End-of-RIB: complete anyway",
			in: func(in *Inputs) { restarted(in, learnedDeadline); in.Sessions[0].State = bgp.StateActive },
			want: func(s *planSummary) {
				s.CompleteNote = fmt.Sprintf("deadline: no End-of-RIB from 10.0.0.12 within %s", learnedDeadline)
				s.Ready, s.Detail = false, "BGP not established with 10.0.0.12 (node-to-node mesh) Active"
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInputs()
			tc.in(&in)
			want := ok
			want.Peers, want.Remote = append([]string(nil), ok.Peers...), append([]string(nil), ok.Remote...)
			tc.want(&want)
			if diff := cmp.Diff(want, summarize(in, plan(in))); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

// restarted makes in a pass since after the speaker started, its
// session up since then, no End-of-RIB yet, routes not yet complete.
func restarted(in *Inputs, since time.Duration) {
	in.Config.Started = in.Now.Add(-since)
	in.LearnedComplete = false
	in.Sessions[0].Since = in.Config.Started
	in.Learned.EndOfRIB = nil
}

// partial is the summary of a plan whose learned routes are not complete,
// waiting for pending.
func partial(s *planSummary, pending string) {
	s.Complete = false
	for i := range s.Remote {
		s.Remote[i] += " (partial)"
	}
	s.Ready, s.Detail = false, "waiting for End-of-RIB from "+pending+" before deleting stale learned routes"
}

func TestVerdictApplyProblems(t *testing.T) {
	in := baseInputs()
	p := plan(in)
	ready, detail := verdict(p, []string{"bgp: add peer 10.0.0.12: boom", "dataplane: stopped"})
	if ready || detail != "bgp: add peer 10.0.0.12: boom; dataplane: stopped" {
		t.Errorf("verdict = %v %q", ready, detail)
	}
}
