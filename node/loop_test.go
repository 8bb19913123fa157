package node

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/gingham-net/gingham/api/model"
	"github.com/gingham-net/gingham/bgp"
	"github.com/gingham-net/gingham/felix"
)

// The loop's scenarios run in a synctest bubble: time is fake and
// synctest.Wait returns once the loop has done all it can.

var (
	n1Addr  = netip.MustParsePrefix("10.0.0.11/24")
	n2Addr  = netip.MustParsePrefix("10.0.0.12/24")
	n2      = n2Addr.Addr()
	n1Block = netip.MustParsePrefix("10.244.1.0/26")
	n2Block = netip.MustParsePrefix("10.244.2.0/26")
	gone    = netip.MustParsePrefix("10.244.9.0/26") // a block of a node deleted while the agent was down
)

// meshSnapshot is node n1 in a two-node mesh with one pool, one block and
// one pod.
func meshSnapshot() Snapshot {
	return Snapshot{
		Local:       model.Node{Name: "n1", IPv4: n1Addr},
		Nodes:       []model.Node{{Name: "n1", IPv4: n1Addr}, {Name: "n2", IPv4: n2Addr}},
		Pools:       []model.Pool{{Name: "default", CIDR: netip.MustParsePrefix("10.244.0.0/16"), BlockSize: 26, IPIPMode: model.EncapNever, NATOutgoing: true}},
		BGP:         model.DefaultBGPConfig(),
		LocalBlocks: []netip.Prefix{n1Block},
		LocalPods:   []LocalPod{{Namespace: "default", Name: "p1", IP: netip.MustParseAddr("10.244.1.1")}},
	}
}

func kernelRoute(p netip.Prefix, via netip.Addr) felix.Route {
	return felix.Route{Prefix: p, NextHops: []felix.NextHop{{Gw: via}}}
}

func learnedRoute(p netip.Prefix, via netip.Addr) bgp.LearnedRoute {
	return bgp.LearnedRoute{Prefix: p, NextHops: []netip.Addr{via}, FromPeer: via}
}

// loopLab is one agent loop over fakes. Create it inside a bubble.
type loopLab struct {
	t       *testing.T
	src     *fakeSource
	secrets *fakeSecrets
	sp      *fakeSpeaker
	dp      *fakeDataplane
	tun     *fakeTunnel
	mtu     *fakeMTU
	pub     *fakePublisher
	health  *health
	logs    *observer.ObservedLogs

	changed, sessions, applied chan struct{}
	learned                    chan bgp.Learned
	stop                       func()
}

func startLoop(t *testing.T, snap Snapshot, dp *fakeDataplane) *loopLab {
	t.Helper()
	core, logs := observer.New(zap.InfoLevel)
	x := &loopLab{t: t, src: &fakeSource{snap: snap}, secrets: &fakeSecrets{data: map[string]map[string][]byte{}},
		sp: &fakeSpeaker{t: t, sessions: map[netip.Addr]bgp.SessionStatus{}}, dp: dp, tun: &fakeTunnel{},
		mtu: &fakeMTU{}, pub: &fakePublisher{}, health: newHealth(3 * statusInterval), logs: logs,
		changed: make(chan struct{}, 1), sessions: make(chan struct{}, 1), applied: make(chan struct{}, 1),
		learned: make(chan bgp.Learned, 1)}
	var first sync.Once
	dp.onApply = func() { first.Do(func() { poke(x.applied) }) }
	l := &loop{log: zap.New(core), clock: systemClock{}, source: x.src, secrets: x.secrets, endpoints: fakeEndpoints{},
		cfg: PlanConfig{NodeName: "n1", NodeIP: n1Addr, ASN: model.DefaultASNumber, InterfacePrefix: "cali",
			ResyncInterval: 90 * time.Second, Started: time.Now()},
		app: &applier{log: zap.New(core), speaker: x.sp, dp: dp, tunnel: x.tun, mtu: x.mtu, status: x.pub, health: x.health},
		ev:  events{changed: x.changed, learned: x.learned, sessions: x.sessions, applied: x.applied}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.run(ctx) }()
	x.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("loop: %v", err)
		}
	}
	synctest.Wait()
	return x
}

// learn delivers the speaker's learned set, no End-of-RIB in it.
func (x *loopLab) learn(routes ...bgp.LearnedRoute) { x.learnEoR(routes) }

// learnEoR delivers the speaker's learned set with the End-of-RIB of peers
// (the newest replaces one not yet taken).
func (x *loopLab) learnEoR(routes []bgp.LearnedRoute, eor ...netip.Addr) {
	select {
	case <-x.learned:
	default:
	}
	x.learned <- bgp.Learned{Routes: routes, EndOfRIB: eor}
}

// session moves a session to state now and tells the loop.
func (x *loopLab) session(peer netip.Addr, state bgp.SessionState) {
	x.sp.setState(peer, state, time.Now())
	poke(x.sessions)
}

// after lets d of fake time pass and the loop settle.
func (x *loopLab) after(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

// TestLoopRestartGating: after a restart the kernel holds the routes the
// previous run programmed. Local state (this node's blackhole) and every
// route learned are programmed at once, but no learned route is deleted
// before the learned set is complete; then only what is no longer learned
// goes.
func TestLoopRestartGating(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dp := newFakeDataplane(kernelRoute(n2Block, n2), kernelRoute(gone, n2))
		x := startLoop(t, meshSnapshot(), dp)
		defer x.stop()
		n2Block2 := netip.MustParsePrefix("10.244.3.0/26")
		steps := []struct {
			name        string
			do          func()
			wait        time.Duration
			wantKernel  []netip.Prefix
			wantDeleted []netip.Prefix
			wantReady   bool
			wantDetail  string
		}{
			{name: "started, session not up: nothing deleted", wait: 500 * time.Millisecond,
				wantKernel: []netip.Prefix{n2Block, gone}, wantDetail: "waiting for End-of-RIB from 10.0.0.12"},
			{name: "session up, a first route learned: programmed, nothing deleted",
				do:   func() { x.session(n2, bgp.StateEstablished); x.learn(learnedRoute(n2Block2, n2)) },
				wait: 500 * time.Millisecond, wantKernel: []netip.Prefix{n2Block, n2Block2, gone}, wantDetail: "waiting for End-of-RIB from 10.0.0.12"},
			{name: "the peer's table and End-of-RIB arrive", do: func() { x.learnEoR([]bgp.LearnedRoute{learnedRoute(n2Block, n2), learnedRoute(n2Block2, n2)}, n2) }, wait: time.Second,
				wantKernel: []netip.Prefix{n2Block, n2Block2}, wantDeleted: []netip.Prefix{gone}, wantReady: true, wantDetail: "ok: 1 BGP sessions established"},
		}
		for _, s := range steps {
			if s.do != nil {
				s.do()
			}
			x.after(s.wait)
			kernel, holes, deleted, _ := x.dp.state()
			if !slices.Equal(kernel, s.wantKernel) || !slices.Equal(deleted, s.wantDeleted) {
				t.Errorf("%s: kernel %v, deleted %v; want %v, deleted %v", s.name, kernel, deleted, s.wantKernel, s.wantDeleted)
			}
			if !slices.Equal(holes, []netip.Prefix{n1Block}) {
				t.Errorf("%s: blackholes %v, want this node's block %s from the first pass", s.name, holes, n1Block)
			}
			if ready, detail := x.health.readiness(); ready != s.wantReady || !strings.Contains(detail, s.wantDetail) {
				t.Errorf("%s: ready %v %q; want %v %q", s.name, ready, detail, s.wantReady, s.wantDetail)
			}
		}
		if n := x.logs.FilterMessageSnippet("learned routes complete").Len(); n != 1 {
			t.Errorf("%d 'learned routes complete' logs, want 1", n)
		}
	})
}

// TestLoopReadinessAndStatus: the status follows readiness at once (not at
// the next interval), is rewritten every statusInterval while nothing
// changes, and the loop does not spin while idle.
func TestLoopReadinessAndStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := startLoop(t, meshSnapshot(), newFakeDataplane())
		defer x.stop()
		if got := x.pub.states(); !slices.Equal(got, []string{"Degraded"}) {
			t.Fatalf("first status %v, want Degraded", got)
		}
		x.session(n2, bgp.StateEstablished)
		x.learnEoR([]bgp.LearnedRoute{learnedRoute(n2Block, n2)}, n2)
		x.after(time.Second)
		if ready, detail := x.health.readiness(); !ready {
			t.Fatalf("not ready with every session up and routes complete: %s", detail)
		}
		st := x.pub.last()
		if st.AgentState != "Ready" || len(st.Sessions) != 1 || st.Sessions[0].State != "Established" || st.RoutesLearned != 1 {
			t.Fatalf("status %+v, want Ready with one Established session and one route", st)
		}
		published, syncs := len(x.pub.states()), x.tun.passes()
		x.after(time.Minute)
		if n := len(x.pub.states()) - published; n < 5 || n > 7 {
			t.Errorf("%d statuses in an idle minute, want one per %s", n, statusInterval)
		}
		if n := x.tun.passes() - syncs; n > 8 {
			t.Errorf("%d passes in an idle minute: the loop spins", n)
		}
		x.session(n2, bgp.StateActive)
		x.after(100 * time.Millisecond)
		if st := x.pub.last(); st.AgentState != "Degraded" || st.Sessions[0].State != "Active" {
			t.Errorf("status %s with session %s 100ms after it went down; want Degraded, Active", st.AgentState, st.Sessions[0].State)
		}
	})
}

// TestLoopAPIOutage: with the API server gone, the Secrets cannot be read
// again (the password last read is kept, the session stays) and then the
// caches cannot be read: the node turns unready and nothing it programmed
// is touched until the API is back.
func TestLoopAPIOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		snap := meshSnapshot()
		snap.BGP.MeshPassword = model.SecretRef{Name: "mesh", Key: "password"}
		dp := newFakeDataplane()
		x := startLoop(t, snap, dp)
		defer x.stop()
		x.secrets.mu.Lock()
		x.secrets.data["mesh"] = map[string][]byte{"password": []byte("s3cret")}
		x.secrets.mu.Unlock()
		poke(x.changed)
		x.after(100 * time.Millisecond)
		x.session(n2, bgp.StateEstablished)
		x.learnEoR([]bgp.LearnedRoute{learnedRoute(n2Block, n2)}, n2)
		x.after(time.Second)
		password := func() string {
			peers := x.sp.peers()
			if len(peers) != 1 {
				return "<no peer>"
			}
			return peers[0].Password
		}
		if ready, detail := x.health.readiness(); !ready || password() != "s3cret" {
			t.Fatalf("before the outage: ready %v (%s), password %q", ready, detail, password())
		}

		x.secrets.setDown(true)
		x.after(30 * time.Second)
		if ready, detail := x.health.readiness(); !ready || password() != "s3cret" {
			t.Errorf("Secrets unreadable: ready %v (%s), password %q; want ready, the password kept", ready, detail, password())
		}
		if n := x.logs.FilterMessageSnippet("keeping the password last read").Len(); n != 1 {
			t.Errorf("%d warnings for the unreadable Secret over 30s, want 1", n)
		}

		_, _, _, applies := dp.state()
		x.src.fail(errAPIDown)
		x.after(statusInterval + time.Second) // the next pass finds out
		if ready, detail := x.health.readiness(); ready || !strings.Contains(detail, "read API caches") {
			t.Errorf("caches unreadable: ready %v %q", ready, detail)
		}
		kernel, _, deleted, after := dp.state()
		if after != applies || !slices.Equal(kernel, []netip.Prefix{n2Block}) || len(deleted) != 0 {
			t.Errorf("caches unreadable: %d applies, kernel %v, deleted %v; want nothing touched", after-applies, kernel, deleted)
		}

		x.src.fail(nil)
		x.after(2 * time.Second)
		if n := x.logs.FilterMessageSnippet("keeping the password last read").Len(); n != 1 {
			t.Errorf("%d warnings for the still unreadable Secret once the caches are back, want still 1", n)
		}
		x.secrets.setDown(false)
		x.after(2 * time.Second)
		if ready, detail := x.health.readiness(); !ready {
			t.Errorf("API back: not ready: %s", detail)
		}
	})
}

// TestLoopSessionFlap: a session that goes down and comes back turns the
// node unready and ready again at once, its routes leave the kernel with
// the session (the peer withdrew them) and come back with it, and the
// speaker's configuration is not touched.
func TestLoopSessionFlap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dp := newFakeDataplane()
		x := startLoop(t, meshSnapshot(), dp)
		defer x.stop()
		x.session(n2, bgp.StateEstablished)
		x.learnEoR([]bgp.LearnedRoute{learnedRoute(n2Block, n2)}, n2)
		x.after(time.Second)
		peers := x.sp.peers()
		for i := range 3 {
			x.session(n2, bgp.StateIdle)
			x.learn()
			x.after(200 * time.Millisecond)
			kernel, _, _, _ := dp.state()
			if ready, _ := x.health.readiness(); ready || len(kernel) != 0 || x.pub.last().AgentState != "Degraded" {
				t.Errorf("flap %d, down: ready %v, kernel %v, status %s; want unready, no route, Degraded", i, ready, kernel, x.pub.last().AgentState)
			}
			x.session(n2, bgp.StateEstablished)
			x.learnEoR([]bgp.LearnedRoute{learnedRoute(n2Block, n2)}, n2)
			x.after(200 * time.Millisecond)
			kernel, _, _, _ = dp.state()
			if ready, detail := x.health.readiness(); !ready || !slices.Equal(kernel, []netip.Prefix{n2Block}) || x.pub.last().AgentState != "Ready" {
				t.Errorf("flap %d, up again: ready %v (%s), kernel %v, status %s", i, ready, detail, kernel, x.pub.last().AgentState)
			}
		}
		if got := x.sp.peers(); !slices.Equal(got, peers) {
			t.Errorf("peers changed across the flaps: %v → %v", peers, got)
		}
	})
}

// TestLoopRestartWaitsForEndOfRIB is issue 18 bug 1: after kill -9 the
// speaker's session came up, its first learned set was empty, and the
// peer's table with its End-of-RIB came seconds later. The learned set
// was taken as complete after a quiet second and the route the previous
// run had programmed was deleted, then added again. Complete must mean
// every session's End-of-RIB processed into the learned set.
func TestLoopRestartWaitsForEndOfRIB(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dp := newFakeDataplane(kernelRoute(n2Block, n2), kernelRoute(gone, n2))
		x := startLoop(t, meshSnapshot(), dp)
		defer x.stop()
		x.session(n2, bgp.StateEstablished)
		x.learnEoR(nil)
		x.after(2500 * time.Millisecond) // the peer is slow to send its table
		if _, _, deleted, _ := dp.state(); len(deleted) != 0 {
			t.Fatalf("learned routes deleted before the peer's End-of-RIB: %v", deleted)
		}
		if ready, detail := x.health.readiness(); ready || !strings.Contains(detail, "End-of-RIB from 10.0.0.12") {
			t.Errorf("before End-of-RIB: ready %v %q; want unready, waiting for 10.0.0.12's End-of-RIB", ready, detail)
		}
		x.learnEoR([]bgp.LearnedRoute{learnedRoute(n2Block, n2)}, n2)
		x.after(time.Second)
		kernel, _, deleted, _ := dp.state()
		if !slices.Equal(kernel, []netip.Prefix{n2Block}) || !slices.Equal(deleted, []netip.Prefix{gone}) {
			t.Errorf("after End-of-RIB: kernel %v, deleted %v; want %s kept, only %s deleted", kernel, deleted, n2Block, gone)
		}
		if ready, detail := x.health.readiness(); !ready {
			t.Errorf("after End-of-RIB: not ready: %s", detail)
		}
	})
}
