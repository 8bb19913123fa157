package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/test/bench/result"
	"github.com/gingham-net/gingham/test/labnet"
)

// B4 and B11 share one lab: an injector namespace inj hosts BIRD (AS
// 65100) with one static protocol per size (disabled) and one BGP session
// per target (disabled). The gingham node gnode sits on a bridge in inj
// (10.0.0.11, injector 10.0.0.1); the BIRD target btgt and the FRR target
// ftgt sit on /31 veths (10.1.0.1 and 10.1.0.3). A cell enables one
// session, waits for Established, then enables the static protocol: that
// instant is t0, and the cell ends when an independent observer (netlink
// route events in the target's namespace) has seen all N routes of the
// target's kernel protocol. The static protocol is then disabled and the
// withdrawal timed the same way, and the session disabled again.

const (
	injAS      = 65100
	injName    = "inj"
	nodeName   = "gnode"
	birdTarget = "btgt"
	frrTarget  = "ftgt"

	protoGingham = 96  // gingham's kernel route protocol
	protoBIRD    = 12  // RTPROT_BIRD
	protoFRR     = 186 // RTPROT_BGP (zebra)
)

// injected is where the injector's prefixes live: /32s, one static
// protocol per size in its own /16 range so sizes never overlap.
var injected = netip.MustParsePrefix("172.16.0.0/12")

// target is one system under test.
type target struct {
	name   string // table column
	series string // curve series and reference name
	proto  string // injector's BGP protocol towards it
	ns     string
	kind   netlink.RouteProtocol
	watch  *fibWatch
	pids   func() []int // processes whose RSS is summed for B11
}

type b4Lab struct {
	r       *runner
	lab     *labnet.Lab
	injSock string
	injD    *labnet.Daemon
	agentD  *labnet.Daemon
	targets []*target
	sizes   []int
}

// b4b11 runs B11 (unless skipped) then B4 (unless skipped) in one lab.
func (r *runner) b4b11(ctx context.Context, doB4, doB11 bool) (err error) {
	b := &b4Lab{r: r, sizes: r.opts.b4Sizes}
	if !doB4 {
		b.sizes = nil
	}
	defer func() { err = errors.Join(err, b.close()) }()
	if err := b.setup(ctx); err != nil {
		return err
	}
	if doB11 {
		if err := b.runB11(ctx); err != nil {
			return err
		}
	}
	if doB4 {
		return b.runB4(ctx)
	}
	return nil
}

func (b *b4Lab) runB11(ctx context.Context) error {
	started := time.Now()
	reps, idle := b.r.opts.reps, b.r.opts.b11Idle
	// B11 on fresh processes: idle RSS with 1k routes. All three targets
	// learn the same 1k routes at once; each repetition restarts them so
	// no earlier, larger table inflates the figure.
	rss := map[string][]float64{}
	cpu := map[string][]float64{}
	for i := 0; i < reps; i++ {
		if i > 0 {
			if err := b.restartTargets(ctx); err != nil {
				return err
			}
		}
		m, c, err := b.idleRSS(ctx, 1000, idle)
		if err != nil {
			return fmt.Errorf("B11 rep %d: %w", i+1, err)
		}
		for k, v := range m {
			rss[k] = append(rss[k], v)
			cpu[k] = append(cpu[k], c[k])
		}
		logf("B11 rep %d: RSS MiB %v, idle millicores %v", i+1, m, c)
	}
	fmt.Printf("\n### B11: idle footprint holding the same 1k learned /32s (%d reps, read over %s after convergence, fresh processes each rep)\n\n", reps, idle)
	fmt.Println("| target | VmRSS MiB (median, min–max) | gingham / target | idle CPU millicores (median, min–max) |")
	fmt.Println("|---|---|---|---|")
	g := result.StatOf(rss[b.targets[0].name])
	for _, t := range b.targets {
		s := result.StatOf(rss[t.name])
		fmt.Printf("| %s | %s | %s | %s |\n", t.name, markdownStat(s, "%.1f"), ratio(g, s), markdownStat(result.StatOf(cpu[t.name]), "%.1f"))
	}

	f := b.r.info.newFile("B11", "Footprint: idle RSS and CPU at 1k learned routes",
		"One lab with gingham-node (real agent, kube-apiserver+etcd), BIRD (protocol kernel) and FRR (bgpd+zebra), each learning the same 1k /32s from one BIRD injector over eBGP (1 peer each). "+
			"Each repetition restarts every target (fresh processes), injects, waits until all routes are in each target's kernel, then idles "+idle.String()+
			"; VmRSS is read from /proc/<pid>/status at the end of the idle window (FRR: bgpd + zebra summed) and CPU is the /proc/<pid>/stat utime+stime delta over the window.", started)
	rssFig := result.Figure{Bench: "B11", Name: "idle VmRSS holding 1k learned /32s (1 peer)", Unit: "MiB", Lower: true,
		Goal: "≤ 64 MiB RSS and ≤ 10 millicores idle at 1k routes/50 peers"}
	cpuFig := result.Figure{Bench: "B11", Name: "idle CPU holding 1k learned /32s (1 peer)", Unit: "millicores", Lower: true,
		Goal: "≤ 10 millicores idle at 1k routes/50 peers"}
	for i, t := range b.targets {
		if i == 0 {
			rssFig.Gingham, cpuFig.Gingham = result.StatOf(rss[t.name]), result.StatOf(cpu[t.name])
			continue
		}
		rssFig.Refs = append(rssFig.Refs, result.Value{Name: t.series, Stat: result.StatOf(rss[t.name])})
		cpuFig.Refs = append(cpuFig.Refs, result.Value{Name: t.series, Stat: result.StatOf(cpu[t.name])})
	}
	rssFig.Met, cpuFig.Met = met(rssFig.Gingham, 64), met(cpuFig.Gingham, 10)
	rssFig.Note = "1 BGP peer, not the goal's 50; whole agent (GoBGP, informers, felix, IPAM GC, metrics)"
	f.Figures = []result.Figure{rssFig, cpuFig}
	f.Notes = append(f.Notes, "Standalone gobgpd is measured in B3 (peak RSS during ingest), not here.",
		fmt.Sprintf("CPU is counted in 10 ms ticks: over a %s window the resolution is %.0f millicores.", idle, 10/idle.Seconds()),
		"The goal's 50 peers are not built here; B5 reports the RSS of agents with 9–49 mesh peers.")
	f.Finished = time.Now()
	return b.r.write(f)
}

func (b *b4Lab) runB4(ctx context.Context) error {
	started := time.Now()
	reps := b.r.opts.reps
	// Repetitions outermost, so that load drift on the shared machine
	// hits every target alike.
	type cellKey struct {
		target string
		n      int
	}
	add := map[cellKey][]progress{}
	del := map[cellKey][]progress{}
	for i := 0; i < reps; i++ {
		for _, n := range b.sizes {
			for _, t := range b.targets {
				a, d, err := b.ingest(ctx, t, n)
				if err != nil {
					return fmt.Errorf("B4 rep %d, %s, %d routes: %w", i+1, t.name, n, err)
				}
				logf("B4 rep %d %s n=%d: add t50 %v t99 %v t100 %v; withdraw t100 %v (events only %v/%v)",
					i+1, t.name, n, a.t50, a.t99, a.t100, d.t100, a.eventsOnly, d.eventsOnly)
				k := cellKey{t.name, n}
				add[k] = append(add[k], a)
				del[k] = append(del[k], d)
			}
		}
	}
	f := b.r.info.newFile("B4", "BGP → kernel FIB end to end",
		"An injector namespace runs BIRD (AS 65100) with one disabled `protocol static` of N /32 blackholes in 172.16.0.0/12 per size and one disabled eBGP session per target. "+
			"Targets, all in the same run: gingham-node (real agent with kube-apiserver+etcd, the injector as a BGPPeer), BIRD (`protocol kernel { ipv4 { export all; }; }`) and FRR (bgpd+zebra, `frr defaults datacenter`). "+
			"A cell enables the target's session, waits for Established, then `birdc enable` of the static protocol is t0; the observer is netlink route events (RTNLGRP_IPV4_ROUTE) in the target's namespace counting routes of the target's kernel protocol (96 / bird / bgp), confirmed by a dump. "+
			"Then the static protocol is disabled and the withdrawal timed the same way. Repetitions are the outer loop so load drift hits all targets alike.", started)
	curves := map[string]*result.Curve{}
	for _, t := range b.targets {
		curves[t.name] = &result.Curve{Chart: "b4-routes-to-fib", Title: "Routes → time until all are in the kernel FIB (t100)",
			XLabel: "routes", YLabel: "seconds", Series: t.series}
	}
	for _, n := range b.sizes {
		fmt.Printf("\n### B4: %d /32 prefixes from a BIRD injector into the kernel FIB (%d reps)\n\n", n, reps)
		fmt.Println("| target | t50 | t99 | t100 (median, min–max) | routes/s (N / t100 median) | gingham / target (t100) | withdraw all, t100 |")
		fmt.Println("|---|---|---|---|---|---|---|")
		gAdd := result.StatOf(secondsOf(t100s(add[cellKey{b.targets[0].name, n}])))
		gDel := result.StatOf(secondsOf(t100s(del[cellKey{b.targets[0].name, n}])))
		addFig := result.Figure{Bench: "B4", Name: fmt.Sprintf("%s /32 BGP → kernel FIB, t100", countLabel(n)), Unit: "s", Lower: true, Gingham: gAdd}
		delFig := result.Figure{Bench: "B4", Name: fmt.Sprintf("%s /32 withdrawn from the kernel FIB, t100", countLabel(n)), Unit: "s", Lower: true, Gingham: gDel}
		if n == 100000 {
			addFig.Goal = "100k ≤ 1.5 s (FRR-class), stretch ≤ 1.0 s (BIRD-class)"
			addFig.Met = met(gAdd, 1.5)
		}
		for i, t := range b.targets {
			ps := add[cellKey{t.name, n}]
			s := result.StatOf(secondsOf(t100s(ps)))
			fmt.Printf("| %s | %.2f s | %.2f s | %s s | %.0f | %s | %.2f s |\n", t.name,
				result.StatOf(secondsOf(pick(ps, func(p progress) time.Duration { return p.t50 }))).Median,
				result.StatOf(secondsOf(pick(ps, func(p progress) time.Duration { return p.t99 }))).Median,
				markdownStat(s, "%.2f"), float64(n)/s.Median, ratio(gAdd, s),
				result.StatOf(secondsOf(t100s(del[cellKey{t.name, n}]))).Median)
			curves[t.name].Points = append(curves[t.name].Points, result.Point{X: float64(n), Y: s})
			if i > 0 {
				addFig.Refs = append(addFig.Refs, result.Value{Name: t.series, Stat: s})
				delFig.Refs = append(delFig.Refs, result.Value{Name: t.series, Stat: result.StatOf(secondsOf(t100s(del[cellKey{t.name, n}])))})
			}
		}
		f.Figures = append(f.Figures, addFig, delFig)
	}
	for _, t := range b.targets {
		f.Curves = append(f.Curves, *curves[t.name])
	}
	corrected, cells := 0, 0
	for k, ps := range add {
		for i, p := range ps {
			cells++
			if !p.eventsOnly || !del[k][i].eventsOnly {
				corrected++
				logf("B4 %s n=%d rep %d: the route count needed a dump (events lagged or overflowed)", k.target, k.n, i+1)
			}
		}
	}
	if corrected > 0 {
		f.Notes = append(f.Notes, fmt.Sprintf("In %d of %d cells the netlink event stream fell behind the kernel (or overflowed) and the count was corrected by a dump; in those cells t100 is an upper bound (by up to ~2 s).", corrected, cells))
	}
	f.Notes = append(f.Notes,
		"The 5k /26 shape of the goal is not measured; only /32s.",
		"The injector's finish time is not recorded (BIRD gives no per-session send-complete time); BIRD as a target shows the injector's ceiling (B3 too).",
		"gingham holds learned routes back from the kernel until every session has been Established for a quiet second (restart safety); the first repetition of each size after a session comes up includes it.")
	f.Finished = time.Now()
	return b.r.write(f)
}

// countLabel renders 100000 as "100k".
func countLabel(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}

// setup builds the lab, starts the three targets and the injector.
func (b *b4Lab) setup(ctx context.Context) error {
	env := b.r.env
	runDir := filepath.Join(b.r.runDir, "b4")
	spec := b4Spec(labnet.TestPrefix()+"b4-", runDir)
	var err error
	b.lab, err = labnet.Build(ctx, spec)
	if err != nil {
		return err
	}
	if err := b.startInjector(); err != nil {
		return err
	}
	for _, r := range []string{birdTarget, frrTarget} {
		if err := b.lab.StartRouter(ctx, r); err != nil {
			return err
		}
	}
	if err := b.lab.StartAPIProxies(env.Config, env.Kubeconfig); err != nil {
		return err
	}
	if err := b.lab.RegisterNodes(ctx, env.Client); err != nil {
		return err
	}
	if err := b.lab.ApplyObjects(ctx, env.Client); err != nil {
		return err
	}
	if err := b.startAgent(); err != nil {
		return err
	}
	daemonPIDs := func(names ...string) func() []int {
		return func() []int {
			var out []int
			for _, n := range names {
				if d, ok := b.lab.Daemon(n); ok {
					out = append(out, d.PID)
				}
			}
			return out
		}
	}
	b.targets = []*target{
		{name: "gingham-node", series: "gingham", proto: "p_gnode", ns: b.lab.NS(nodeName), kind: protoGingham,
			pids: func() []int { return []int{b.agentD.PID} }},
		{name: "BIRD", series: "BIRD", proto: "p_btgt", ns: b.lab.NS(birdTarget), kind: protoBIRD, pids: daemonPIDs(birdTarget + "/bird")},
		{name: "FRR (bgpd+zebra)", series: "FRR", proto: "p_ftgt", ns: b.lab.NS(frrTarget), kind: protoFRR,
			pids: daemonPIDs(frrTarget+"/bgpd", frrTarget+"/zebra")},
	}
	for _, t := range b.targets {
		if t.watch, err = newFIBWatch(t.ns, t.kind, injected); err != nil {
			return err
		}
	}
	return nil
}

func b4Spec(prefix, runDir string) labnet.Spec {
	injAddr := netip.MustParseAddr("10.0.0.1")
	s := labnet.Spec{Prefix: prefix, RunDir: runDir, PoolCIDR: labnet.DefaultPool()}
	s.Segments = []labnet.Segment{{Name: "lan", CIDR: netip.MustParsePrefix("10.0.0.0/24"), Host: injName, Gateway: injAddr}}
	s.Nodes = []labnet.Node{{Name: nodeName, Segment: "lan", Addr: netip.MustParsePrefix("10.0.0.11/24"), Gateway: injAddr}}
	s.Links = []labnet.Link{
		{A: injName, B: birdTarget, AAddr: netip.MustParsePrefix("10.1.0.0/31"), BAddr: netip.MustParsePrefix("10.1.0.1/31")},
		{A: injName, B: frrTarget, AAddr: netip.MustParsePrefix("10.1.0.2/31"), BAddr: netip.MustParsePrefix("10.1.0.3/31")},
	}
	s.Routers = []labnet.Router{
		// The injector's namespace; its BIRD is started by startInjector
		// with its own configuration, never by StartRouter.
		{Name: injName, Kind: labnet.BIRD, AS: injAS, RouterID: injAddr},
		{Name: birdTarget, Kind: labnet.BIRD, AS: 65201, RouterID: netip.MustParseAddr("10.1.0.1"), FIB: true,
			Neighbors: []labnet.Neighbor{{Name: injName, Addr: netip.MustParseAddr("10.1.0.0"), AS: injAS}}},
		{Name: frrTarget, Kind: labnet.FRR, AS: 65202, RouterID: netip.MustParseAddr("10.1.0.3"),
			Neighbors: []labnet.Neighbor{{Name: injName, Addr: netip.MustParseAddr("10.1.0.2"), AS: injAS}}},
	}
	mesh := false
	as := int64(labnet.ClusterAS)
	peerAS := int64(injAS)
	s.Objects = []client.Object{
		&v1.BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: v1.DefaultBGPConfigName},
			Spec: v1.BGPConfigurationSpec{NodeToNodeMeshEnabled: &mesh, ASNumber: &as}},
		// Non-pool prefixes: allowPoolRoutes is not needed.
		&v1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "injector"},
			Spec: v1.BGPPeerSpec{NodeSelector: "all()", PeerIP: injAddr.String(), ASNumber: &peerAS}},
	}
	return s
}

// staticName is the injector's static protocol holding n routes.
func staticName(n int) string { return "s" + strconv.Itoa(n) }

// injectorConfig renders the injector's bird.conf: one disabled static
// protocol of n /32 blackholes per size, each starting on its own /16
// boundary from 172.16.0.0, and one disabled eBGP session per target.
func injectorConfig(sizes []int) string {
	var sb strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&sb, format+"\n", a...) }
	p("log stderr { warning, error, fatal };")
	p("router id 10.0.0.1;")
	p("protocol device { scan time 10; }")
	base := uint32(172)<<24 | uint32(16)<<16
	for _, n := range sizes {
		writeStatic(p, staticName(n), base, n)
		// Next size starts on the next /16 boundary after this one.
		base = (base + uint32(n) + 0xffff) &^ 0xffff
	}
	p("template bgp inj {")
	p("  local as %d;", injAS)
	// Dial at once when a cell enables the session (not part of any
	// timed interval).
	p("  hold time 9; keepalive time 3; connect delay time 0; connect retry time 2; error wait time 1, 5;")
	p("  ipv4 { import none; export all; };")
	p("}")
	p("protocol bgp p_gnode from inj { disabled; neighbor 10.0.0.11 as %d; }", labnet.ClusterAS)
	p("protocol bgp p_btgt from inj { disabled; neighbor 10.1.0.1 as 65201; }")
	p("protocol bgp p_ftgt from inj { disabled; neighbor 10.1.0.3 as 65202; }")
	return sb.String()
}

// writeStatic renders a disabled static protocol of n /32 blackholes
// from base.
func writeStatic(p func(string, ...any), name string, base uint32, n int) {
	p("protocol static %s {", name)
	p("  disabled;")
	p("  ipv4;")
	for i := 0; i < n; i++ {
		a := base + uint32(i)
		p("  route %d.%d.%d.%d/32 blackhole;", a>>24, a>>16&255, a>>8&255, a&255)
	}
	p("}")
}

// allSizes are the static protocols the injector has: B11's 1k and B4's.
func (b *b4Lab) allSizes() []int {
	seen := map[int]bool{1000: true}
	out := []int{1000}
	for _, n := range b.sizes {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

func (b *b4Lab) startInjector() error {
	dir := b.lab.RouterDir(injName)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("injector: %w", err)
	}
	conf := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(conf, []byte(injectorConfig(b.allSizes())), 0o644); err != nil {
		return fmt.Errorf("injector: %w", err)
	}
	b.injSock = filepath.Join(dir, "bird.ctl")
	d, err := labnet.StartDaemon(injName+"/bird", b.lab.NS(injName), filepath.Join(dir, "bird.log"), nil,
		"bird", "-f", "-c", conf, "-s", b.injSock, "-P", filepath.Join(dir, "bird.pid"))
	if err != nil {
		return fmt.Errorf("injector: %w", err)
	}
	b.injD = d
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := b.birdc(context.Background(), "show", "status"); err == nil {
			return nil
		}
		if time.Now().After(deadline) || !d.Running() {
			return fmt.Errorf("injector did not come up (log %s)", d.LogPath)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (b *b4Lab) startAgent() error {
	// Info level: debug logging of every learned route would be measured too.
	d, err := b.lab.StartAgent(nodeName, "", agentEnv...)
	if err != nil {
		return err
	}
	b.agentD = d
	return nil
}

// agentEnv is what every benchmark adds to an agent's environment: info
// logging (debug logging of every route would be measured too) and an
// IPAM GC grace longer than any run (benchmarks allocate addresses
// without pods).
var agentEnv = []string{"GINGHAM_LOG_LEVEL=info", "GINGHAM_IPAM_GC_GRACE=2h"}

// restartTargets gives B11 fresh processes with identical configuration.
func (b *b4Lab) restartTargets(ctx context.Context) error {
	if err := b.lab.StopDaemon(nodeName+"/gingham-node", 10*time.Second); err != nil {
		return err
	}
	if err := b.startAgent(); err != nil {
		return err
	}
	for _, r := range []string{birdTarget, frrTarget} {
		if err := b.lab.StopRouter(r, 5*time.Second); err != nil {
			return err
		}
		if err := b.lab.StartRouter(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

func (b *b4Lab) birdc(ctx context.Context, args ...string) (string, error) {
	out, err := labnet.Run(ctx, "", "birdc", append([]string{"-s", b.injSock}, args...)...)
	if err != nil {
		return out, fmt.Errorf("birdc %s: %w", strings.Join(args, " "), err)
	}
	return out, nil
}

// protoState is the BGP state of `birdc show protocols <name>`.
func (b *b4Lab) protoState(ctx context.Context, name string) (string, error) {
	out, err := b.birdc(ctx, "show", "protocols", name)
	if err != nil {
		return "", err
	}
	if st, ok := parseProtocolStates(out)[name]; ok {
		return st, nil
	}
	return "", fmt.Errorf("protocol %s not in %q", name, out)
}

func (b *b4Lab) sessionUp(ctx context.Context, t *target) error {
	if _, err := b.birdc(ctx, "enable", t.proto); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for {
		st, err := b.protoState(cctx, t.proto)
		if err == nil && st == "Established" {
			return nil
		}
		select {
		case <-cctx.Done():
			return fmt.Errorf("session to %s: last state %q: %w", t.name, st, cctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ingest is one B4 cell: session up, inject n routes and time them into
// the FIB, withdraw and time that, session down.
func (b *b4Lab) ingest(ctx context.Context, t *target, n int) (add, del progress, err error) {
	if err := b.sessionUp(ctx, t); err != nil {
		return add, del, err
	}
	defer func() {
		if _, derr := b.birdc(context.Background(), "disable", t.proto); derr != nil {
			err = errors.Join(err, derr)
		}
	}()
	if err := t.watch.resync(); err != nil {
		return add, del, err
	}
	if c, _, _ := t.watch.count(); c != 0 {
		return add, del, fmt.Errorf("%s still has %d injected routes before the cell", t.name, c)
	}
	// 2 min plus 2 s per 1k routes (gingham's 100k took 20 s at load 3
	// and up to 96 s at load 18).
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute+time.Duration(n)*2*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := b.birdc(ctx, "enable", staticName(n)); err != nil {
		return add, del, err
	}
	add, err = t.watch.waitCount(wctx, start, n, true)
	if err != nil {
		_, _ = b.birdc(context.Background(), "disable", staticName(n))
		return add, del, err
	}
	start = time.Now()
	if _, err := b.birdc(ctx, "disable", staticName(n)); err != nil {
		return add, del, err
	}
	del, err = t.watch.waitCount(wctx, start, n, false)
	return add, del, err
}

// idleRSS is one B11 sample: every target learns the same n routes at
// once, then idles; VmRSS is read from /proc (summed for FRR's daemons)
// and CPU (millicores) is measured over the idle window.
func (b *b4Lab) idleRSS(ctx context.Context, n int, idle time.Duration) (rss, millicores map[string]float64, err error) {
	for _, t := range b.targets {
		if err := b.sessionUp(ctx, t); err != nil {
			return nil, nil, err
		}
		if err := t.watch.resync(); err != nil {
			return nil, nil, err
		}
	}
	if _, err := b.birdc(ctx, "enable", staticName(n)); err != nil {
		return nil, nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for _, t := range b.targets {
		if _, err := t.watch.waitCount(wctx, time.Now(), n, true); err != nil {
			return nil, nil, err
		}
	}
	cpu0 := map[string]float64{}
	for _, t := range b.targets {
		if cpu0[t.name], err = procCPU(t.pids()...); err != nil {
			return nil, nil, err
		}
	}
	idleStart := time.Now()
	select {
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	case <-time.After(idle):
	}
	window := time.Since(idleStart).Seconds()
	rss, millicores = map[string]float64{}, map[string]float64{}
	for _, t := range b.targets {
		if rss[t.name], err = procRSS(t.pids()...); err != nil {
			return nil, nil, err
		}
		c, err := procCPU(t.pids()...)
		if err != nil {
			return nil, nil, err
		}
		millicores[t.name] = (c - cpu0[t.name]) / window * 1000
	}
	if _, err := b.birdc(ctx, "disable", staticName(n)); err != nil {
		return nil, nil, err
	}
	for _, t := range b.targets {
		if _, err := t.watch.waitCount(wctx, time.Now(), n, false); err != nil {
			return nil, nil, err
		}
		if _, err := b.birdc(ctx, "disable", t.proto); err != nil {
			return nil, nil, err
		}
	}
	return rss, millicores, nil
}

func vmRSS(pid int) (float64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("rss of %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				v, err := strconv.ParseFloat(f[0], 64)
				if err != nil {
					return 0, fmt.Errorf("rss of %d: %w", pid, err)
				}
				return v, nil
			}
		}
	}
	return 0, fmt.Errorf("rss of %d: no VmRSS", pid)
}

func (b *b4Lab) close() error {
	var errs []error
	for _, t := range b.targets {
		if t.watch != nil {
			t.watch.Close()
		}
	}
	if b.injD != nil {
		errs = append(errs, b.injD.Stop(5*time.Second))
	}
	if b.lab != nil {
		errs = append(errs, b.lab.Close())
	}
	return errors.Join(errs...)
}

func t100s(ps []progress) []time.Duration {
	return pick(ps, func(p progress) time.Duration { return p.t100 })
}

func pick(ps []progress, f func(progress) time.Duration) []time.Duration {
	out := make([]time.Duration, len(ps))
	for i, p := range ps {
		out[i] = f(p)
	}
	return out
}
