package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/internal/netlinkx"
	"github.com/gingham-net/gingham/test/labnet"
)

// rbgpProto is the kernel protocol of gingham's routes (GINGHAM_ROUTE_PROTOCOL).
const rbgpProto = 96

// rbgpPinger sends ICMP echo requests from a pod at a fixed interval
// through a raw socket inside the pod's namespace and records which were
// answered, so the loss of a window is exact (no reply can be in flight
// when it is counted).
type rbgpPinger struct {
	name     string
	dst      netip.Addr
	id       uint16
	interval time.Duration
	conn     net.PacketConn

	mu      sync.Mutex
	sent    int
	replied map[uint16]bool

	stopSend chan struct{}
	sendDone chan struct{}
	recvDone chan struct{}
	once     sync.Once
	result   rbgpPingResult
}

type rbgpPingResult struct {
	Sent, Lost int
	// LongestGap is the longest run of unanswered requests, as time.
	LongestGap time.Duration
}

func (r rbgpPingResult) String() string {
	return fmt.Sprintf("%d of %d", r.Lost, r.Sent)
}

var rbgpPingSeq atomic.Uint32

// rbgpStartPing starts pinging to from pod from every interval until stop.
func rbgpStartPing(t *testing.T, name string, from *labnet.Pod, to netip.Addr, interval time.Duration) *rbgpPinger {
	t.Helper()
	p := &rbgpPinger{name: name, dst: to, interval: interval, replied: map[uint16]bool{},
		id:       uint16(os.Getpid()) ^ uint16(rbgpPingSeq.Add(1)<<12),
		stopSend: make(chan struct{}), sendDone: make(chan struct{}), recvDone: make(chan struct{})}
	if err := labnet.InNetNS(from.NetNS, func() error {
		c, err := net.ListenPacket("ip4:icmp", from.IP.String())
		p.conn = c
		return err
	}); err != nil {
		t.Fatalf("ping socket in %s: %v", from, err)
	}
	go p.send()
	go p.receive()
	t.Cleanup(func() { p.stop() })
	return p
}

func (p *rbgpPinger) send() {
	defer close(p.sendDone)
	tick := time.NewTicker(p.interval)
	defer tick.Stop()
	dst := &net.IPAddr{IP: p.dst.AsSlice()}
	for seq := uint16(0); ; seq++ {
		msg := make([]byte, 16)
		msg[0] = 8 // echo request
		binary.BigEndian.PutUint16(msg[4:6], p.id)
		binary.BigEndian.PutUint16(msg[6:8], seq)
		binary.BigEndian.PutUint64(msg[8:16], uint64(time.Now().UnixNano()))
		binary.BigEndian.PutUint16(msg[2:4], labnet.InternetChecksum(msg))
		_, _ = p.conn.WriteTo(msg, dst) // an unreachable destination is a loss, counted below
		p.mu.Lock()
		p.sent++
		p.mu.Unlock()
		select {
		case <-p.stopSend:
			return
		case <-tick.C:
		}
	}
}

func (p *rbgpPinger) receive() {
	defer close(p.recvDone)
	buf := make([]byte, 1500)
	for {
		n, from, err := p.conn.ReadFrom(buf)
		if err != nil {
			return // closed by stop
		}
		a, ok := from.(*net.IPAddr)
		if !ok || n < 8 || buf[0] != 0 || binary.BigEndian.Uint16(buf[4:6]) != p.id {
			continue
		}
		if src, _ := netip.AddrFromSlice(a.IP); src.Unmap() != p.dst {
			continue
		}
		p.mu.Lock()
		p.replied[binary.BigEndian.Uint16(buf[6:8])] = true
		p.mu.Unlock()
	}
}

// stop ends sending, waits a second for the last replies and returns the
// loss.
func (p *rbgpPinger) stop() rbgpPingResult {
	p.once.Do(func() {
		close(p.stopSend)
		<-p.sendDone
		time.Sleep(time.Second)
		_ = p.conn.Close()
		<-p.recvDone
		p.mu.Lock()
		defer p.mu.Unlock()
		r := rbgpPingResult{Sent: p.sent}
		run := 0
		for seq := 0; seq < p.sent; seq++ {
			if p.replied[uint16(seq)] {
				run = 0
				continue
			}
			r.Lost++
			run++
			r.LongestGap = max(r.LongestGap, time.Duration(run)*p.interval)
		}
		p.result = r
	})
	return p.result
}

// rbgpRouteEvent is one kernel notification about a gingham route.
type rbgpRouteEvent struct {
	At      time.Time
	Deleted bool
	Route   netlinkx.Route
}

func (e rbgpRouteEvent) String() string {
	op := "add"
	if e.Deleted {
		op = "del"
	}
	return fmt.Sprintf("%s %s %s %+v", e.At.Format("15:04:05.000"), op, e.Route.Dst, e.Route.Path)
}

// rbgpRouteWatch records the IPv4 route events of protocol 96 in a node's
// namespace (netlink multicast, through internal/netlinkx).
type rbgpRouteWatch struct {
	node   string
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	events []rbgpRouteEvent
	err    error
}

func rbgpWatchRoutes(t *testing.T, lab *labnet.Lab, node string) *rbgpRouteWatch {
	t.Helper()
	f, err := os.Open(labnet.NetNSPath(lab.NS(node)))
	if err != nil {
		t.Fatal(err)
	}
	h, err := netlinkx.Open(int(f.Fd()))
	if err != nil {
		_ = f.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan netlinkx.Event, 4096)
	if err := h.Subscribe(ctx, ch); err != nil {
		cancel()
		h.Close()
		_ = f.Close()
		t.Fatalf("subscribe to %s's routes: %v", node, err)
	}
	w := &rbgpRouteWatch{node: node, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer func() { h.Close(); _ = f.Close() }()
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-ch:
				w.mu.Lock()
				switch {
				case ev.Kind == netlinkx.EventError:
					w.err = ev.Err // events lost: the counts cannot be trusted
				case ev.Kind == netlinkx.EventRoute && ev.Route.Protocol == rbgpProto && ev.Route.Dst.Addr().Is4():
					w.events = append(w.events, rbgpRouteEvent{At: time.Now(), Deleted: ev.Deleted, Route: ev.Route})
				}
				w.mu.Unlock()
			}
		}
	}()
	t.Cleanup(w.stop)
	return w
}

// stop ends the subscription (idempotent).
func (w *rbgpRouteWatch) stop() {
	w.cancel()
	<-w.done
}

// counts returns the adds and deletes seen so far, and the events.
func (w *rbgpRouteWatch) counts() (adds, dels int, evs []rbgpRouteEvent, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.events {
		if e.Deleted {
			dels++
		} else {
			adds++
		}
	}
	return adds, dels, append([]rbgpRouteEvent(nil), w.events...), w.err
}

// deleted returns when p's route was first deleted after since.
func (w *rbgpRouteWatch) deleted(p netip.Prefix, since time.Time) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.events {
		if e.Deleted && e.Route.Dst == p && !e.At.Before(since) {
			return e.At, true
		}
	}
	return time.Time{}, false
}

// rbgpBlockVia returns the block node routes via gw.
func rbgpBlockVia(ctx context.Context, lab *labnet.Lab, node, gw string) (netip.Prefix, string) {
	out, _ := lab.Run(ctx, node, "ip", "route", "show", "proto", "96")
	m := regexp.MustCompile(`(?m)^(10\.244\.\S+) via ` + regexp.QuoteMeta(gw) + `\b`).FindStringSubmatch(out)
	if m == nil {
		return netip.Prefix{}, out
	}
	p, err := netip.ParsePrefix(m[1])
	if err != nil {
		return netip.Prefix{}, out
	}
	return p, out
}

// rbgpSessionState is the state of node's GoBGP session with peer, as
// the gobgp CLI lists it ("" when not configured).
func rbgpSessionState(ctx context.Context, lab *labnet.Lab, node, peer string) string {
	n, _, err := rbgpNeighbors(ctx, lab, node)
	if err != nil {
		return "error: " + err.Error()
	}
	return n[peer].State
}

// TestReliabilityAgentRestart is issue 9's agent restart: in a 3-node mesh
// with default timers, node1's agent is stopped with SIGTERM, then (in a
// second round) killed with SIGKILL, and started again, while pods ping
// node2↔node3 and node2→node1 every 100ms. Kernel routes stay and the peers
// keep node1's routes through graceful restart: no packet may be lost and
// no gingham route deleted on node1 or node2. (It replaces issue 5's
// TestAgentRestartKeepsForwarding.)
func TestReliabilityAgentRestart(t *testing.T) {
	t.Log("reliability: does: restarts node1's agent of a 3-node mesh (default timers, graceful restart 120s) twice, after SIGTERM and after SIGKILL, under continuous pod-to-pod pings, counting lost packets and gingham route events")
	budget := rbgpBudget // about a minute unloaded
	if rbgpLong() {
		budget += 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	spec := labnet.MeshSpec(labnet.TestPrefix(), runDir(t), 3)
	lab, env := agentLab(t, ctx, spec)
	pods := createPods(t, ctx, lab, env, 1) // node1-a, node2-a, node3-a
	requireMatrix(t, ctx, pods)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		name := map[syscall.Signal]string{syscall.SIGTERM: "SIGTERM", syscall.SIGKILL: "SIGKILL"}[sig]
		t.Run(name, func(t *testing.T) {
			t.Logf("reliability: does: sends %s to node1's agent, keeps it down 3s, starts it again and waits until every agent is ready, while pods ping node2↔node3 and node2→node1 every 100ms and netlink route events are recorded on node1 and node2", name)
			rbgpRestart(t, ctx, lab, pods, sig, name, 1, 3*time.Second)
		})
	}
	if rbgpLong() {
		t.Run("SIGKILL x10", func(t *testing.T) {
			t.Log("reliability: does: (long, GINGHAM_RELIABILITY_LONG=1) kills node1's agent with SIGKILL and starts it at once, 10 times in a row, each as soon as the previous start is ready, under the same pings and route-event recording (Calico #7144: repeated restarts stalled routing)")
			rbgpRestart(t, ctx, lab, pods, syscall.SIGKILL, "SIGKILL x10", 10, 0)
		})
	}
}

// rbgpBudget bounds each BGP reliability test, lab setup included: at a
// load of 30 on the shared 2-core machine a lab took minutes to come up.
const rbgpBudget = 8 * time.Minute

// rbgpLong reports whether the long variants run (GINGHAM_RELIABILITY_LONG=1).
func rbgpLong() bool { return os.Getenv("GINGHAM_RELIABILITY_LONG") == "1" }

// rbgpRestart signals node1's agent, waits down, starts it again and waits
// until all agents are ready, rounds times, under pings and route-event
// recording; then checks nothing was lost and no gingham route churned.
func rbgpRestart(t *testing.T, ctx context.Context, lab *labnet.Lab, pods []*labnet.Pod, sig syscall.Signal, name string, rounds int, down time.Duration) {
	node1Addr := lab.Spec.Nodes[0].Addr.Addr().String()
	before, _ := lab.Run(ctx, "node1", "ip", "route", "show", "proto", "96")
	watches := []*rbgpRouteWatch{rbgpWatchRoutes(t, lab, "node1"), rbgpWatchRoutes(t, lab, "node2")}
	pingers := []*rbgpPinger{
		rbgpStartPing(t, "node2 pod → node3 pod", pods[1], pods[2].IP, 100*time.Millisecond),
		rbgpStartPing(t, "node3 pod → node2 pod", pods[2], pods[1].IP, 100*time.Millisecond),
		rbgpStartPing(t, "node2 pod → node1 pod (through the restarting node)", pods[1], pods[0].IP, 100*time.Millisecond),
	}
	time.Sleep(time.Second)

	var exits, readies []time.Duration
	for round := 0; round < rounds; round++ {
		d, ok := lab.Daemon("node1/gingham-node")
		if !ok {
			t.Fatal("node1's agent is not running")
		}
		signalled := time.Now()
		if err := d.Signal(sig); err != nil {
			t.Fatal(err)
		}
		select {
		case <-d.Exited():
		case <-time.After(20 * time.Second):
			t.Fatalf("node1's agent (pid %d) still running 20s after %s", d.PID, name)
		}
		exits = append(exits, time.Since(signalled))
		if down > 0 {
			// Down: the peers noticed (their sessions are not
			// Established) and keep node1's block as stale routes, in
			// their kernels too.
			time.Sleep(down)
			if st := rbgpSessionState(ctx, lab, "node2", node1Addr); st == "Establ" {
				t.Errorf("node2's session with node1 is Established while node1's agent is down")
			}
			if ok, out := learnedVia(ctx, lab, "node2", node1Addr); !ok {
				t.Errorf("node2 dropped node1's routes while node1's agent was down:\n%s", out)
			}
		}
		if _, err := lab.StartAgent("node1", ""); err != nil {
			t.Fatal(err)
		}
		started := time.Now()
		waitReady(t, ctx, lab)
		readies = append(readies, time.Since(started))
		waitFor(t, ctx, "node2's session with node1 Established", func() (bool, string) {
			st := rbgpSessionState(ctx, lab, "node2", node1Addr)
			return st == "Establ", st
		})
		time.Sleep(time.Second)
	}
	rnd := func(ds []time.Duration, r time.Duration) string {
		out := make([]string, len(ds))
		for i, d := range ds {
			out[i] = d.Round(r).String()
		}
		return strings.Join(out, ", ")
	}
	t.Logf("reliability: figure: %s: %s", "agent exit after "+name, rnd(exits, 10*time.Millisecond))
	t.Logf("reliability: figure: %s: %s", "agent ready after start ("+name+")", rnd(readies, 100*time.Millisecond))
	time.Sleep(2 * time.Second) // learned routes complete, first apply done, peers' End-of-RIB

	for _, p := range pingers {
		r := p.stop()
		t.Logf("reliability: figure: %s: %s", fmt.Sprintf("packets lost (%s), %s", name, p.name), r.String())
		if r.Lost > 0 {
			t.Errorf("%s: %d of %d packets lost across the restart (longest gap %s)", p.name, r.Lost, r.Sent, r.LongestGap)
		}
		if r.Sent < 20 {
			t.Errorf("%s: only %d packets sent: the window proves nothing", p.name, r.Sent)
		}
	}
	for _, w := range watches {
		w.stop()
		adds, dels, evs, err := w.counts()
		t.Logf("reliability: figure: %s: %s", fmt.Sprintf("proto 96 route events on %s (%s)", w.node, name), fmt.Sprintf("%d adds, %d deletes", adds, dels))
		if err != nil {
			t.Errorf("route events on %s lost (%v): counts unknown", w.node, err)
		}
		if dels > 0 || adds > 0 {
			lines := make([]string, len(evs))
			for i, e := range evs {
				lines[i] = e.String()
			}
			t.Errorf("%s's gingham routes churned across the restart (want none):\n%s", w.node, strings.Join(lines, "\n"))
		}
	}
	after, _ := lab.Run(ctx, "node1", "ip", "route", "show", "proto", "96")
	if before != after {
		t.Errorf("node1's routes changed across the restart:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// Timers of TestReliabilityPeerFailure's sessions.
const (
	rbgpKeepalive   = 2 * time.Second
	rbgpHold        = 3 * rbgpKeepalive // api/v1: hold = 3 × keepaliveTime
	rbgpRestartTime = 5 * time.Second
)

// TestReliabilityPeerFailure is issue 9's failure detection (B10): nodes
// peer through a BGPPeer with short timers (keepalive 2s, hold 6s,
// graceful restart 5s; mesh off), and node1 fails three ways. The time
// until node2 and node3 delete node1's block from their kernels is
// measured from the failure with netlink events.
func TestReliabilityPeerFailure(t *testing.T) {
	t.Log("reliability: does: fails node1 of a 3-node cluster whose sessions use keepalive 2s, hold 6s and graceful restart 5s (link cut; agent SIGKILL; both) and measures when the other nodes delete its block from their kernels; BFD is not implemented in gingham")
	ctx, cancel := context.WithTimeout(context.Background(), rbgpBudget) // about a minute unloaded
	defer cancel()
	spec := labnet.MeshSpec(labnet.TestPrefix(), runDir(t), 3)
	for _, o := range spec.Objects {
		if c, ok := o.(*v1.BGPConfiguration); ok {
			off := false
			c.Spec.NodeToNodeMeshEnabled = &off
		}
	}
	spec.Objects = append(spec.Objects, &v1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "fast-timers"},
		Spec: v1.BGPPeerSpec{NodeSelector: "all()", PeerSelector: "all()",
			KeepaliveTime:  &metav1.Duration{Duration: rbgpKeepalive},
			MaxRestartTime: &metav1.Duration{Duration: rbgpRestartTime}}})
	lab, env := agentLab(t, ctx, spec)
	pods := createPods(t, ctx, lab, env, 1)
	node1 := lab.Spec.Nodes[0].Addr.Addr().String()
	var block netip.Prefix
	waitFor(t, ctx, "node2 routes node1's block", func() (bool, string) {
		var out string
		block, out = rbgpBlockVia(ctx, lab, "node2", node1)
		return block.IsValid(), out
	})
	converged := func() {
		t.Helper()
		for _, pair := range [][2]string{{"node2", node1}, {"node3", node1}, {"node1", "10.0.0.12"}, {"node1", "10.0.0.13"}} {
			waitFor(t, ctx, pair[0]+" routes via "+pair[1], func() (bool, string) { return learnedVia(ctx, lab, pair[0], pair[1]) })
		}
		waitReady(t, ctx, lab)
	}
	converged()
	t.Logf("node1's block %s; sessions of node2:\n%s", block, func() string { _, out, _ := rbgpNeighbors(ctx, lab, "node2"); return out }())
	link := func(state string) {
		t.Helper()
		if _, err := lab.Run(ctx, "switch", "ip", "link", "set", "v-node1", state); err != nil {
			t.Fatal(err)
		}
	}
	kill := func() { t.Helper(); killAgent(t, lab, "node1") }
	// measure waits until node2 and node3 delete node1's block and checks
	// the time against the earliest the timers allow.
	measure := func(t *testing.T, what string, failed time.Time, watches []*rbgpRouteWatch, earliest time.Duration, configured string) {
		t.Helper()
		for _, w := range watches {
			var at time.Time
			waitFor(t, ctx, w.node+" deletes node1's block "+block.String(), func() (bool, string) {
				var ok bool
				at, ok = w.deleted(block, failed)
				return ok, "no delete event yet"
			})
			took := at.Sub(failed)
			t.Logf("reliability: figure: %s: %s", fmt.Sprintf("%s: %s withdraws node1's block", what, w.node),
				fmt.Sprintf("%s after the failure (%s)", took.Round(10*time.Millisecond), configured))
			if took < earliest {
				t.Errorf("%s withdrew node1's block %s after the failure, before the timers allow (%s)", w.node, took, earliest)
			}
			if ok, out := learnedVia(ctx, lab, w.node, node1); ok {
				t.Errorf("%s still routes via node1 after the delete event:\n%s", w.node, out)
			}
		}
	}
	// Undetected by TCP, a failure surfaces when the hold timer expires:
	// between hold − keepalive (the last keepalive came just before the
	// failure) and hold after it; GoBGP then treats the peer as
	// restarting (RFC 4724 / its issue 2174) and keeps the routes for the
	// peer's restart time. A second of slack for a late keepalive.
	silent := rbgpHold - rbgpKeepalive + rbgpRestartTime - time.Second
	expectSilent := fmt.Sprintf("expected %s to %s: hold %s (less up to one keepalive) + graceful restart %s", rbgpHold-rbgpKeepalive+rbgpRestartTime, rbgpHold+rbgpRestartTime, rbgpHold, rbgpRestartTime)

	// With the defaults (keepalive 20s, hold 60s; graceful restart from
	// nodeMeshMaxRestartTime / a BGPPeer's maxRestartTime, else
	// GINGHAM_GRACEFUL_RESTART_TIME, 120s) the same mechanism gives:
	t.Logf("reliability: figure: %s: %s", "dead-node detection with default timers (derived from the cases below)",
		"hold 60s + graceful restart 120s: routes to a dead node's pods stay up to 180s; an agent crash without restart: 120s")

	t.Run("underlay link cut, agent alive", func(t *testing.T) {
		t.Log("reliability: does: sets node1's switch port down (node1's agent keeps running) and measures when node2 and node3 delete node1's block from their kernels; BFD is not implemented in gingham, so detection is the BGP hold timer plus graceful-restart time")
		watches := []*rbgpRouteWatch{rbgpWatchRoutes(t, lab, "node2"), rbgpWatchRoutes(t, lab, "node3")}
		cut := time.Now()
		link("down")
		measure(t, "link cut", cut, watches, silent, expectSilent)
		link("up")
		start := time.Now()
		converged()
		t.Logf("reliability: figure: %s: %s", "link restored: routes and sessions back after", time.Since(start).Round(100*time.Millisecond).String())
	})

	t.Run("agent SIGKILL, not restarted", func(t *testing.T) {
		t.Log("reliability: does: kills node1's agent with SIGKILL and leaves it down (its kernel closes the TCP sessions at once) while a node2 pod pings a node1 pod, measures when node2 and node3 delete node1's block from their kernels, then restarts the agent")
		watches := []*rbgpRouteWatch{rbgpWatchRoutes(t, lab, "node2"), rbgpWatchRoutes(t, lab, "node3")}
		ping := rbgpStartPing(t, "node2 pod → node1 pod", pods[1], pods[0].IP, 100*time.Millisecond)
		killed := time.Now()
		kill()
		measure(t, "agent SIGKILL", killed, watches, rbgpRestartTime-500*time.Millisecond,
			fmt.Sprintf("expected %s: the peers see the TCP close at once and keep the routes for the graceful-restart time", rbgpRestartTime))
		if _, err := lab.StartAgent("node1", ""); err != nil {
			t.Fatal(err)
		}
		converged()
		// node1 forwarded all along; its pods were cut off from the moment
		// the peers gave up on its routes until it advertised them again.
		r := ping.stop()
		t.Logf("reliability: figure: %s: %s", "packets lost node2 pod → node1 pod, agent killed and restarted after the graceful-restart time", fmt.Sprintf("%s (longest gap %s)", r, r.LongestGap))
		if r.Lost == 0 {
			t.Errorf("no packet lost although node2 had no route to node1's pod for a while: the pinger cannot see losses")
		}
	})

	t.Run("agent SIGKILL and underlay link cut", func(t *testing.T) {
		t.Log("reliability: does: sets node1's switch port down and kills node1's agent with SIGKILL (a dead node: no FIN or NOTIFICATION reaches the peers) and measures when node2 and node3 delete node1's block from their kernels; BFD is not implemented in gingham, so detection is the BGP hold timer plus graceful-restart time")
		watches := []*rbgpRouteWatch{rbgpWatchRoutes(t, lab, "node2"), rbgpWatchRoutes(t, lab, "node3")}
		cut := time.Now()
		link("down")
		kill()
		measure(t, "node dead", cut, watches, silent, expectSilent)
	})
}
