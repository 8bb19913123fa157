package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/ipam"
	"github.com/gingham-net/gingham/test/bench/result"
	"github.com/gingham-net/gingham/test/labnet"
)

// B10: three nodes A, B, C (labnet.MeshSpec node1..3 with the mesh off)
// peering through a BGPPeer {nodeSelector: all(), peerSelector: all(),
// keepaliveTime K, maxRestartTime GR} (mesh sessions take no timers), a
// pod on each (CNI ADD with gingham's plugins). B observes. Each
// repetition:
//
//	(a)+(b), at the same instant: SIGKILL A's agent, and take C's port on
//	    the bridge down (underlay link down); the times until B's kernel
//	    drops A's block (a) and C's block (b). Then C's link goes up (time
//	    until B's and C's blocks are back in each other's kernels) and A's
//	    agent is started again.
//	(c) graceful restart: `busybox ping -i 0.01` pod A → pod B, SIGTERM A's
//	    agent, start it again, wait until its status socket says Ready and
//	    2 s more: pings lost, deletions of A's block in B's kernel and of
//	    B's block in A's, and the restart's duration.
//
// The reference then runs the same on the same nodes and pods with BIRD
// (Calico's template: graceful restart, kernel protocol with persist and
// graceful restart) and the same hold and graceful-restart times; (c) is
// `birdc graceful restart` + start.

// The three nodes: A is killed and restarted, B observes, C loses its link.
const (
	b10A = "node1"
	b10B = "node2"
	b10C = "node3"
)

type b10Sample struct {
	kill, linkDown, linkRecover time.Duration
	restart                     time.Duration
	lost, sent, flaps           int
}

type b10Lab struct {
	r         *runner
	lab       *labnet.Lab
	nodes     []labnet.Node
	pods      map[string]*labnet.Pod  // by node
	blocks    map[string]netip.Prefix // by node
	watches   map[string]*fibWatch    // the current system's routes, by node
	keep, gr  time.Duration
	birdConfs map[string]string
	birdSocks map[string]string
	sys       string // "gingham" or "BIRD"
}

func (r *runner) b10(ctx context.Context) (err error) {
	started := time.Now()
	b := &b10Lab{r: r, keep: r.opts.b10Keep, gr: r.opts.b10GR, birdConfs: map[string]string{}, birdSocks: map[string]string{},
		pods: map[string]*labnet.Pod{}, blocks: map[string]netip.Prefix{}, watches: map[string]*fibWatch{}}
	spec := labnet.MeshSpec(labnet.TestPrefix()+"b10-", filepath.Join(r.runDir, "b10"), 3)
	mesh := false
	as := int64(labnet.ClusterAS)
	spec.Objects = []client.Object{
		&v1.BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: v1.DefaultBGPConfigName},
			Spec: v1.BGPConfigurationSpec{NodeToNodeMeshEnabled: &mesh, ASNumber: &as}},
		&v1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "b10-mesh"},
			Spec: v1.BGPPeerSpec{NodeSelector: "all()", PeerSelector: "all()",
				KeepaliveTime: &metav1.Duration{Duration: b.keep}, MaxRestartTime: &metav1.Duration{Duration: b.gr}}},
	}
	b.nodes = spec.Nodes
	if b.lab, err = labnet.Build(ctx, spec); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, b.close()) }()
	c := r.env.Client
	if err := b.lab.StartAPIProxies(r.env.Config, r.env.Kubeconfig); err != nil {
		return err
	}
	if err := b.lab.RegisterNodes(ctx, c); err != nil {
		return err
	}
	if err := b.lab.ApplyObjects(ctx, c); err != nil {
		return err
	}
	for _, n := range b.nodes {
		if _, err := b.lab.StartAgent(n.Name, "", agentEnv...); err != nil {
			return err
		}
	}
	if err := waitReady(ctx, c, b10A, b10B, b10C); err != nil {
		return err
	}
	for _, n := range b.nodes {
		p, err := b.lab.CreatePod(ctx, c, labnet.PodRequest{Node: n.Name, Namespace: "default", Name: "b10-" + n.Name})
		if err != nil {
			return err
		}
		b.pods[n.Name], b.blocks[n.Name] = p, ipam.BlockOf(p.IP, v1.DefaultBlockSizeIPv4)
	}

	samples := map[string][]b10Sample{}
	// gingham first, then the same on BIRD.
	if err := b.useWatches(protoGingham, "gingham"); err != nil {
		return err
	}
	if err := b.waitRoutes(ctx, 2*time.Minute); err != nil {
		return err
	}
	if err := labnet.Ping(ctx, b.pods[b10A].NetNS, b.pods[b10B].IP, 5); err != nil {
		return fmt.Errorf("pod A → pod B before the benchmark: %w", err)
	}
	if err := b.settle(ctx); err != nil {
		return err
	}
	for rep := 0; rep < r.opts.reps; rep++ {
		s, err := b.rep(ctx)
		if err != nil {
			return fmt.Errorf("B10 gingham rep %d: %w", rep+1, err)
		}
		b.log(rep, s)
		samples["gingham"] = append(samples["gingham"], s)
	}
	// Reference: stop the agents (their routes stay), flush their routes
	// to blocks (not the CNI's routes to the pods, also protocol 96), run
	// BIRD with each node's block.
	for _, n := range b.nodes {
		if err := b.lab.StopDaemon(n.Name+"/gingham-node", 10*time.Second); err != nil {
			return err
		}
		for _, sel := range [][]string{{"type", "blackhole"}, {"dev", "eth0"}} {
			if _, err := b.lab.Run(ctx, n.Name, append([]string{"ip", "route", "flush", "proto", strconv.Itoa(protoGingham)}, sel...)...); err != nil {
				return err
			}
		}
	}
	if err := b.useWatches(protoBIRD, "BIRD"); err != nil {
		return err
	}
	for _, n := range b.nodes {
		dir := b.lab.NodeDir(n.Name)
		b.birdConfs[n.Name] = filepath.Join(dir, "bird-b10.conf")
		b.birdSocks[n.Name] = filepath.Join(dir, "bird.ctl")
		conf := calicoMeshBIRD(n, b.nodes, []netip.Prefix{b.blocks[n.Name]}, calicoTimers{hold: 3 * b.keep, keepalive: b.keep, gr: b.gr})
		if err := os.WriteFile(b.birdConfs[n.Name], []byte(conf), 0o644); err != nil {
			return err
		}
		if err := b.start(n.Name, false); err != nil {
			return err
		}
	}
	if err := b.waitRoutes(ctx, 2*time.Minute); err != nil {
		return err
	}
	if err := labnet.Ping(ctx, b.pods[b10A].NetNS, b.pods[b10B].IP, 5); err != nil {
		return fmt.Errorf("pod A → pod B through BIRD: %w", err)
	}
	if err := b.settle(ctx); err != nil {
		return err
	}
	for rep := 0; rep < r.opts.reps; rep++ {
		s, err := b.rep(ctx)
		if err != nil {
			return fmt.Errorf("B10 BIRD rep %d: %w", rep+1, err)
		}
		b.log(rep, s)
		samples["BIRD"] = append(samples["BIRD"], s)
	}
	return r.write(b.report(samples, started))
}

func (b *b10Lab) log(rep int, s b10Sample) {
	logf("B10 rep %d %s: kill → withdrawn %v, link down → withdrawn %v (back %v), graceful restart %v: %d of %d pings lost, %d route deletions",
		rep+1, b.sys, s.kill, s.linkDown, s.linkRecover, s.restart, s.lost, s.sent, s.flaps)
}

func (b *b10Lab) report(samples map[string][]b10Sample, started time.Time) *result.File {
	hold := 3 * b.keep
	f := b.r.info.newFile("B10", "Failover and restart",
		fmt.Sprintf("Three nodes A, B, C on one bridge, each with a pod (CNI ADD with gingham's plugins); the nodes peer through a BGPPeer {nodeSelector: all(), peerSelector: all(), keepaliveTime %s (hold %s), maxRestartTime %s} (mesh sessions have no timer settings). ", b.keep, hold, b.gr)+
			"Per repetition, at the same instant: (a) SIGKILL A's agent and (b) C's port on the bridge down; the times until B's kernel drops A's block and C's block (netlink route events). Then C's link up (time until B's and C's blocks are back in each other's kernels) and A's agent restarted. "+
			"(c) `busybox ping -i 0.01` pod A → pod B while A's agent gets SIGTERM and is started again; pings lost, deletions of A's block in B's kernel and of B's block in A's, and the time until the agent's status socket says Ready with every session Established (+2 s of pings after that). "+
			fmt.Sprintf("Reference in the same lab, nodes and pods after the agents are stopped and their block routes flushed: BIRD with Calico's template, hold %s / keepalive %s, graceful restart time %s, kernel protocol with persist and graceful restart, restarted with -R as calico-node does; (c) is `birdc graceful restart` + start.", hold, b.keep, b.gr),
		started)
	stat := func(sys string, fn func(b10Sample) float64) result.Stat {
		var xs []float64
		for _, s := range samples[sys] {
			xs = append(xs, fn(s))
		}
		return result.StatOf(xs)
	}
	figs := []struct {
		name, unit, goal string
		fn               func(b10Sample) float64
		limit            float64
		note             string
	}{
		{"(a) agent SIGKILL → peer's kernel drops the node's block", "s",
			fmt.Sprintf("graceful-restart time (%s) + ≤ 1 s (the kernel closes the TCP session, so the peer keeps the routes as stale for the restart time)", b.gr),
			func(s b10Sample) float64 { return s.kill.Seconds() }, b.gr.Seconds() + 1, ""},
		{"(b) underlay link down → peer's kernel drops the node's block", "s", fmt.Sprintf("detection = configured hold (%s) + ≤ 1 s", hold),
			func(s b10Sample) float64 { return s.linkDown.Seconds() }, hold.Seconds() + 1, ""},
		{"(b) link up → the two blocks back in each other's kernels", "s", "",
			func(s b10Sample) float64 { return s.linkRecover.Seconds() }, 0, "bounded by the connect-retry and idle-hold / error-wait timers"},
		{"(c) graceful restart: pings lost (10 ms interval)", "pings", "0 lost pings across restart within GR time",
			func(s b10Sample) float64 { return float64(s.lost) }, 0, ""},
		{"(c) graceful restart: route deletions (A's block in B, B's block in A)", "deletions", "no flap",
			func(s b10Sample) float64 { return float64(s.flaps) }, 0, ""},
		{"(c) graceful restart: stop → running with every session Established", "s", "",
			func(s b10Sample) float64 { return s.restart.Seconds() }, 0,
			"gingham: SIGTERM until the status socket says Ready with every session Established; BIRD: `birdc graceful restart` until every session is Established again"},
	}
	fmt.Printf("\n### B10: failover and restart, hold %s, graceful restart %s (%d reps)\n\n", hold, b.gr, b.r.opts.reps)
	fmt.Println("| measure | gingham (median, min–max) | BIRD (median, min–max) | goal |")
	fmt.Println("|---|---|---|---|")
	for _, m := range figs {
		fig := result.Figure{Bench: "B10", Name: m.name, Unit: m.unit, Lower: true, Goal: m.goal, Note: m.note,
			Gingham: stat("gingham", m.fn), Refs: []result.Value{{Name: "BIRD", Stat: stat("BIRD", m.fn)}}}
		if m.goal != "" {
			fig.Met = met(fig.Gingham, m.limit)
		}
		f.Figures = append(f.Figures, fig)
		format := "%.2f"
		if m.unit != "s" {
			format = "%.0f"
		}
		fmt.Printf("| %s (%s) | %s | %s | %s |\n", m.name, m.unit, markdownStat(fig.Gingham, format), markdownStat(fig.Refs[0].Stat, format), m.goal)
	}
	f.Notes = append(f.Notes,
		"(a) is bounded by graceful restart, not by the hold time: a SIGKILLed process's sockets are closed by its kernel, so the peer sees the session end at once and, as GR helper, keeps the routes as stale for the advertised restart time. Without graceful restart it would be immediate.",
		"(b) is the silent failure: nothing reaches the peer, so only the hold timer detects it. GoBGP (v4.8.0, pkg/server/fsm.go, after osrg/gobgp#2174) treats an expired hold timer on a GR session like a broken connection and keeps the routes as stale for the restart time; BIRD flushes at hold expiry. So gingham withdraws after hold + restart time (defaults 60 s + 120 s).",
		"BIRD's error wait (5–30 s, Calico's template) and GoBGP's idle hold after reset (5 s) and connect retry (5 s) bound the link-up recovery.",
		"(a) and (b) run at the same instant on different nodes (A and C) to save time; the observer B handles both.")
	f.Finished = time.Now()
	return f
}

// useWatches points the watches at a protocol's routes.
func (b *b10Lab) useWatches(proto int, sys string) error {
	b.closeWatches()
	for _, n := range b.nodes {
		w, err := newFIBWatchOpts(b.lab.NS(n.Name), netlink.RouteProtocol(proto), labnet.DefaultPool(), watchOptions{unicastOnly: true})
		if err != nil {
			return err
		}
		b.watches[n.Name] = w
	}
	b.sys = sys
	return nil
}

func (b *b10Lab) closeWatches() {
	for n, w := range b.watches {
		w.Close()
		delete(b.watches, n)
	}
}

// has reports whether node's kernel has a route to other's block.
func (b *b10Lab) has(node, other string) bool { return b.watches[node].has(b.blocks[other]) }

// waitRoutes waits until each node's kernel has the others' blocks.
func (b *b10Lab) waitRoutes(ctx context.Context, timeout time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return poll(wctx, 5*time.Millisecond, b.sys+" routes to every block", func() (bool, error) {
		for _, n := range b.nodes {
			for _, o := range b.nodes {
				if n.Name != o.Name && !b.has(n.Name, o.Name) {
					return false, nil
				}
			}
		}
		return true, nil
	})
}

// start (re)starts node's system under test. A restarted BIRD runs with
// -R (graceful-restart recovery, as calico-node starts it), so that it
// sets the restart flag and keeps its kernel routes until its peers have
// sent End-of-RIB.
func (b *b10Lab) start(node string, restart bool) error {
	if b.sys == "gingham" {
		_, err := b.lab.StartAgent(node, "", agentEnv...)
		return err
	}
	_ = os.Remove(b.birdSocks[node])
	argv := []string{"bird", "-f", "-c", b.birdConfs[node], "-s", b.birdSocks[node], "-P", filepath.Join(b.lab.NodeDir(node), "bird.pid")}
	if restart {
		argv = append(argv, "-R")
	}
	d, err := labnet.StartDaemon(node+"/bird", b.lab.NS(node), filepath.Join(b.lab.NodeDir(node), "bird.log"), nil, argv...)
	if err != nil {
		return err
	}
	b.lab.Adopt(d)
	return nil
}

func (b *b10Lab) daemon(node string) (*labnet.Daemon, error) {
	name := node + "/gingham-node"
	if b.sys == "BIRD" {
		name = node + "/bird"
	}
	d, ok := b.lab.Daemon(name)
	if !ok {
		return nil, fmt.Errorf("%s is not running", name)
	}
	return d, nil
}

// rep runs (a)+(b) and (c) once on the current system.
func (b *b10Lab) rep(ctx context.Context) (s b10Sample, err error) {
	limit := b.gr + 3*b.keep + 60*time.Second
	wctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	// (a) SIGKILL A and (b) C's link down, at once.
	d, err := b.daemon(b10A)
	if err != nil {
		return s, err
	}
	port := "v-" + b10C
	t0 := time.Now()
	if err := d.Signal(syscall.SIGKILL); err != nil {
		return s, err
	}
	_, downErr := b.lab.Run(ctx, "switch", "ip", "link", "set", port, "down")
	defer func() {
		// Idempotent; restores the link after an error in between.
		if _, uerr := b.lab.Run(context.WithoutCancel(ctx), "switch", "ip", "link", "set", port, "up"); uerr != nil {
			err = errors.Join(err, uerr)
		}
	}()
	if downErr != nil {
		return s, downErr
	}
	wB := b.watches[b10B]
	if err := wB.waitFor(wctx, "withdrawal of A's and C's blocks", func() bool { return !b.has(b10B, b10A) && !b.has(b10B, b10C) }); err != nil {
		return s, fmt.Errorf("(a)+(b): %w", err)
	}
	s.kill = wB.deletedAt(b.blocks[b10A]).Sub(t0)
	s.linkDown = wB.deletedAt(b.blocks[b10C]).Sub(t0)
	t1 := time.Now()
	if _, err := b.lab.Run(ctx, "switch", "ip", "link", "set", port, "up"); err != nil {
		return s, err
	}
	select {
	case <-d.Exited():
	case <-time.After(5 * time.Second):
		return s, fmt.Errorf("(a): %s did not exit after SIGKILL", d.Name)
	}
	if err := b.start(b10A, true); err != nil {
		return s, err
	}
	if err := b.watches[b10C].waitFor(wctx, "B's and C's blocks back", func() bool { return b.has(b10B, b10C) && b.has(b10C, b10B) }); err != nil {
		return s, fmt.Errorf("(b) recovery: %w", err)
	}
	s.linkRecover = time.Since(t1)
	if err := b.waitRoutes(wctx, limit); err != nil {
		return s, fmt.Errorf("(a) recovery: %w", err)
	}
	if err := b.settle(ctx); err != nil {
		return s, err
	}

	// (c) graceful restart of A under ping A → B.
	ping := labnet.Command(ctx, b.pods[b10A].NetNS, "busybox", "ping", "-q", "-i", "0.01", b.pods[b10B].IP.String())
	var out strings.Builder
	ping.Stdout, ping.Stderr = &out, &out
	if err := ping.Start(); err != nil {
		return s, err
	}
	pingDone := false
	defer func() {
		if !pingDone {
			_ = ping.Process.Kill()
			_ = ping.Wait()
		}
	}()
	time.Sleep(time.Second)
	for _, w := range b.watches {
		w.resetEvents()
	}
	t0 = time.Now()
	if err := b.gracefulRestart(ctx); err != nil {
		return s, fmt.Errorf("(c): %w", err)
	}
	s.restart = time.Since(t0)
	time.Sleep(2 * time.Second)
	s.flaps = wB.deletions(b.blocks[b10A]) + b.watches[b10A].deletions(b.blocks[b10B])
	if err := ping.Process.Signal(os.Interrupt); err != nil {
		return s, err
	}
	_ = ping.Wait()
	pingDone = true
	if s.sent, s.lost, err = parsePing(out.String()); err != nil {
		return s, fmt.Errorf("(c): %w", err)
	}
	if s.sent < 100 {
		return s, fmt.Errorf("(c): only %d pings sent: %q", s.sent, out.String())
	}
	if err := b.waitRoutes(ctx, limit); err != nil {
		return s, fmt.Errorf("(c) recovery: %w", err)
	}
	if err := b.settle(ctx); err != nil {
		return s, err
	}
	return s, nil
}

// settle waits until every node's system is up again (see ready) and 1 s
// more.
func (b *b10Lab) settle(ctx context.Context) error {
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for _, n := range b.nodes {
		if err := b.ready(wctx, n.Name); err != nil {
			return err
		}
	}
	time.Sleep(time.Second)
	return nil
}

// ready waits until node's system says it is up: gingham's status socket
// Ready with every session Established, every BIRD session Established.
func (b *b10Lab) ready(ctx context.Context, node string) error {
	if b.sys == "BIRD" {
		ctl, err := dialBird(ctx, b.birdSocks[node])
		if err != nil {
			return err
		}
		defer ctl.Close()
		var peers []string
		for _, n := range b.nodes {
			if n.Name != node {
				peers = append(peers, "Mesh_"+strings.ReplaceAll(n.Addr.Addr().String(), ".", "_"))
			}
		}
		return ctl.waitStates(ctx, "Established", peers...)
	}
	sock := b.lab.StatusSocket(node)
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}}
	defer hc.CloseIdleConnections()
	return poll(ctx, 50*time.Millisecond, node+" Ready", func() (bool, error) {
		resp, err := hc.Get("http://local/status")
		if err != nil {
			return false, nil
		}
		defer resp.Body.Close()
		var st v1.GinghamNodeStatus
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			return false, nil
		}
		if st.Status.AgentState != "Ready" || len(st.Status.Sessions) < len(b.nodes)-1 {
			return false, nil
		}
		for _, s := range st.Status.Sessions {
			if s.State != "Established" {
				return false, nil
			}
		}
		return true, nil
	})
}

// gracefulRestart restarts A's system the planned way and returns once it
// is up again.
func (b *b10Lab) gracefulRestart(ctx context.Context) error {
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if b.sys == "gingham" {
		if err := b.lab.StopDaemon(b10A+"/gingham-node", 30*time.Second); err != nil {
			return err
		}
	} else {
		d, err := b.daemon(b10A)
		if err != nil {
			return err
		}
		if out, err := labnet.Run(wctx, "", "birdc", "-s", b.birdSocks[b10A], "graceful", "restart"); err != nil {
			return fmt.Errorf("birdc graceful restart: %w: %s", err, out)
		}
		select {
		case <-d.Exited():
		case <-wctx.Done():
			return fmt.Errorf("BIRD did not exit after graceful restart: %w", wctx.Err())
		}
		_ = b.lab.StopDaemon(d.Name, time.Second) // forget it
	}
	if err := b.start(b10A, true); err != nil {
		return err
	}
	return b.ready(wctx, b10A)
}

var pingStats = regexp.MustCompile(`(\d+) packets transmitted, (\d+) packets received`)

// parsePing reads busybox ping's summary.
func parsePing(out string) (sent, lost int, err error) {
	m := pingStats.FindStringSubmatch(out)
	if m == nil {
		return 0, 0, fmt.Errorf("no ping summary in %q", out)
	}
	sent, _ = strconv.Atoi(m[1])
	recv, _ := strconv.Atoi(m[2])
	return sent, sent - recv, nil
}

func (b *b10Lab) close() error {
	b.closeWatches()
	if b.lab == nil {
		return nil
	}
	return b.lab.Close()
}
