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

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/test/bench/result"
	"github.com/gingham-net/gingham/test/labnet"
)

// B3 is bgperf's shape without Docker: injector → target → monitor, all
// on one bridge (10.0.0.0/24 in namespace sw).
//
//   - inj1..injk (10.0.0.101..) each run one BIRD (like bgperf's testers:
//     BIRD allows only one session per neighbor address) with, per cell
//     that uses that peer, a disabled static protocol c<cell> of /32
//     blackholes in 172.16.0.0/12, and per target a disabled eBGP session
//     i_<target>.
//   - Targets: gtgt 10.0.0.11 (gingham-node, a real agent; the injector's
//     addresses and the monitor are BGPPeers), otgt .12 (standalone
//     gobgpd), btgt .13 (BIRD, no kernel protocol), ftgt .14 (FRR
//     bgpd+zebra). Every target exports every route to every peer (gingham
//     has no per-peer export policy, so the others are configured alike).
//   - mon 10.0.0.254 runs BIRD with one session per target, importing only
//     /32s inside 172.16.0.0/12; the bench reads "Routes: N imported" of
//     the target's session through BIRD's control socket every 10 ms.
//
// A cell enables the target's k injector sessions (session-up = until all
// are Established at the injector), then enables the k statics: t0. It
// ends when the monitor has imported all k×n routes; CPU-seconds are the
// target's utime+stime between t0 and then, peak RSS the largest VmRSS
// sampled every ~100 ms. Then the statics are disabled (withdrawal timed
// at the monitor), targets with a FIB drain it, and the sessions go down.

const (
	b3MonAS  = 65300
	b3InjAS  = 65100
	b3Within = "172.16.0.0/12"
)

// b3Cell is one cell: peers injector sessions of routes /32s each.
type b3Cell struct{ peers, routes int }

func (c b3Cell) String() string { return fmt.Sprintf("%d×%s", c.peers, countLabel(c.routes)) }

func parseCells(s string) ([]b3Cell, error) {
	var out []b3Cell
	total := 0
	for _, f := range strings.Split(s, ",") {
		a, b, ok := strings.Cut(strings.TrimSpace(f), "x")
		p, err1 := strconv.Atoi(a)
		n, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil || p < 1 || p > 50 || n < 1 {
			return nil, fmt.Errorf("bad cell %q (want PEERSxROUTES, 1..50 peers)", f)
		}
		out = append(out, b3Cell{p, n})
		total += p * ((n + 255) &^ 255)
	}
	if total > 1<<20 {
		return nil, errors.New("cells need more than the 1M addresses of 172.16.0.0/12")
	}
	return out, nil
}

type b3Target struct {
	name, series string
	key          string // namespace short name and protocol suffix
	addr         netip.Addr
	as           uint32
	pids         func() []int
	fib          *fibWatch // targets that program a kernel FIB (drained between cells)
}

type b3Lab struct {
	r       *runner
	lab     *labnet.Lab
	inj     []*birdCtl // injector i+1
	monCtl  *birdCtl
	targets []*b3Target
	agentD  *labnet.Daemon
	cells   []b3Cell
	maxPeer int
}

type b3Sample struct {
	sessionUp, t50, t99, t100, withdraw time.Duration
	peakRSS, cpu                        float64
}

func b3InjAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, 0, byte(100 + i)}) }

var b3MonAddr = netip.MustParseAddr("10.0.0.254")

func (r *runner) b3(ctx context.Context) (err error) {
	started := time.Now()
	b := &b3Lab{r: r, cells: r.opts.b3Cells}
	for _, c := range b.cells {
		b.maxPeer = max(b.maxPeer, c.peers)
	}
	defer func() { err = errors.Join(err, b.close()) }()
	if err := b.setup(ctx); err != nil {
		return err
	}
	type key struct {
		target string
		cell   int
	}
	samples := map[key][]b3Sample{}
	for rep := 0; rep < r.opts.reps; rep++ {
		for ci, c := range b.cells {
			for _, t := range b.targets {
				s, err := b.cell(ctx, t, ci, c)
				if err != nil {
					return fmt.Errorf("B3 rep %d, %s, %s: %w", rep+1, t.name, c, err)
				}
				logf("B3 rep %d %s %s: session-up %v, t50 %v t99 %v t100 %v, withdraw %v, peak RSS %.1f MiB, CPU %.2f s",
					rep+1, t.name, c, s.sessionUp, s.t50, s.t99, s.t100, s.withdraw, s.peakRSS, s.cpu)
				samples[key{t.name, ci}] = append(samples[key{t.name, ci}], s)
			}
		}
	}

	f := r.info.newFile("B3", "BGP ingest, bgperf-style (injector → target → monitor)",
		"Namespaces on one bridge: a BIRD injector (k eBGP sessions from k source addresses, each exporting n static /32s in 172.16.0.0/12) → the target → an independent BIRD monitor "+
			"(one session per target, importing only those /32s). Targets in the same run: gingham-node (real agent with kube-apiserver+etcd; the injector's addresses and the monitor are BGPPeers, "+
			"so it is an eBGP transit: GoBGP re-advertises eBGP-learned routes to the other eBGP peers with next hop self), standalone gobgpd 3.10, BIRD 2 (no kernel protocol) and FRR (bgpd+zebra, datacenter defaults). "+
			"A cell enables the k injector sessions (session-up: until all are Established at the injector), then enables the statics (t0); t50/t99/t100 are when the monitor's \"Routes: N imported\" "+
			"for the target's session (read through BIRD's control socket every 10 ms) reaches 50/99/100 % of k×n. CPU-seconds are the target's utime+stime from t0 to t100 (FRR: bgpd+zebra), "+
			"peak RSS the largest VmRSS sampled every ~100 ms in that window. Withdrawal is timed at the monitor the same way; targets with a FIB (gingham, FRR) drain it before the next cell.", started)
	for ci, c := range b.cells {
		total := c.peers * c.routes
		g := samples[key{b.targets[0].name, ci}]
		stat := func(ss []b3Sample, fn func(b3Sample) float64) result.Stat {
			xs := make([]float64, len(ss))
			for i, s := range ss {
				xs[i] = fn(s)
			}
			return result.StatOf(xs)
		}
		metrics := []struct {
			name, unit string
			fn         func(b3Sample) float64
			goal       string
		}{
			{"t100 at the monitor", "s", func(s b3Sample) float64 { return s.t100.Seconds() }, "≤ 1.2× standalone gobgpd in time (embedding overhead ≈ 0)"},
			{"t99 at the monitor", "s", func(s b3Sample) float64 { return s.t99.Seconds() }, ""},
			{"t50 at the monitor", "s", func(s b3Sample) float64 { return s.t50.Seconds() }, ""},
			{"session-up (injector sessions Established)", "s", func(s b3Sample) float64 { return s.sessionUp.Seconds() }, ""},
			{"peak RSS during ingest", "MiB", func(s b3Sample) float64 { return s.peakRSS }, "≤ 1.2× standalone gobgpd in RSS; ≤ 1.5 KB/route"},
			{"CPU-seconds t0→t100", "s", func(s b3Sample) float64 { return s.cpu }, ""},
			{"withdraw all, t100 at the monitor", "s", func(s b3Sample) float64 { return s.withdraw.Seconds() }, ""},
		}
		fmt.Printf("\n### B3: %s (%d /32s) injector → target → monitor (%d reps)\n\n", c, total, r.opts.reps)
		fmt.Println("| target | session-up | t50 | t99 | t100 (median, min–max) | routes/s | gingham / target (t100) | peak RSS MiB | CPU-s t0→t100 | withdraw t100 |")
		fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
		for _, t := range b.targets {
			ss := samples[key{t.name, ci}]
			t100 := stat(ss, metrics[0].fn)
			fmt.Printf("| %s | %.2f s | %.2f s | %.2f s | %s s | %.0f | %s | %s | %.2f | %.2f s |\n", t.name,
				stat(ss, metrics[3].fn).Median, stat(ss, metrics[2].fn).Median, stat(ss, metrics[1].fn).Median,
				markdownStat(t100, "%.2f"), float64(total)/t100.Median, ratio(stat(g, metrics[0].fn), t100),
				markdownStat(stat(ss, metrics[4].fn), "%.1f"), stat(ss, metrics[5].fn).Median, stat(ss, metrics[6].fn).Median)
		}
		for mi, m := range metrics {
			fig := result.Figure{Bench: "B3", Name: fmt.Sprintf("%s /32: %s", c, m.name), Unit: m.unit, Lower: true,
				Gingham: stat(g, m.fn), Goal: m.goal}
			var gobgpd result.Stat
			for _, t := range b.targets[1:] {
				s := stat(samples[key{t.name, ci}], m.fn)
				fig.Refs = append(fig.Refs, result.Value{Name: t.series, Stat: s})
				if t.key == "otgt" {
					gobgpd = s
				}
			}
			switch mi {
			case 0:
				fig.Met = met(fig.Gingham, 1.2*gobgpd.Median)
			case 4:
				fig.Met = met(fig.Gingham, 1.2*gobgpd.Median)
				fig.Note = fmt.Sprintf("gingham peak RSS / routes = %.2f KB per route, the idle process included (B11: ~70 MiB at 1k routes)",
					fig.Gingham.Median*1024/float64(total))
			}
			f.Figures = append(f.Figures, fig)
		}
	}
	f.Notes = append(f.Notes,
		"gingham-node is measured at the independent monitor: configured with the injector and the monitor as BGPPeers it is an eBGP transit (GoBGP's default export policy accepts, no per-peer export filter), so the monitor sees the injected routes with next hop = the gingham node.",
		"gingham also programs every learned route into its kernel (felix) while it re-advertises them, and FRR's zebra does the same; gobgpd and BIRD (no kernel protocol) only speak BGP. CPU and RSS include that work.",
		"Every target exports every route to every peer, so in a k-peer cell each injector session is sent the other peers' routes back (as bgperf's targets do); the injector imports none.",
		"Session-up is dominated by timers (the injector dials at once: connect delay 0), not by the target's speed.",
		"The injector's send-complete time is not observable per session; BIRD as a target shows the injector's ceiling: when a target's t100 is within ~10 % of BIRD's, read it as tester-bound.")
	f.Finished = time.Now()
	return r.write(f)
}

// injCmd runs a command on injectors 1..k.
func (b *b3Lab) injCmd(k int, cmd string) error {
	for i := 0; i < k; i++ {
		if _, err := b.inj[i].Cmd(cmd); err != nil {
			return fmt.Errorf("injector %d: %w", i+1, err)
		}
	}
	return nil
}

// cell runs one B3 cell on target t.
func (b *b3Lab) cell(ctx context.Context, t *b3Target, ci int, c b3Cell) (s b3Sample, err error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	session, static := "i_"+t.key, fmt.Sprintf("c%d", ci)
	defer func() { err = errors.Join(err, b.injCmd(c.peers, "disable "+session)) }()
	monProto := "m_" + t.key
	if n, err := b.monCtl.imported(monProto); err != nil || n != 0 {
		return s, fmt.Errorf("monitor has %d routes from %s before the cell (%v)", n, t.name, err)
	}
	t0 := time.Now()
	if err := b.injCmd(c.peers, "enable "+session); err != nil {
		return s, err
	}
	for i := 0; i < c.peers; i++ {
		if err := b.inj[i].waitStates(cctx, "Established", session); err != nil {
			return s, err
		}
	}
	s.sessionUp = time.Since(t0)

	total := c.peers * c.routes
	pids := t.pids()
	cpu0, err := procCPU(pids...)
	if err != nil {
		return s, err
	}
	t0 = time.Now()
	if err := b.injCmd(c.peers, "enable "+static); err != nil {
		return s, err
	}
	lastRSS := time.Time{}
	for {
		n, err := b.monCtl.imported(monProto)
		if err != nil {
			return s, err
		}
		now := time.Since(t0)
		if s.t50 == 0 && 2*n >= total {
			s.t50 = now
		}
		if s.t99 == 0 && 100*n >= 99*total {
			s.t99 = now
		}
		if time.Since(lastRSS) >= 100*time.Millisecond || n >= total {
			lastRSS = time.Now()
			if rss, err := procRSS(pids...); err == nil {
				s.peakRSS = max(s.peakRSS, rss)
			}
		}
		if n >= total {
			s.t100 = now
			break
		}
		select {
		case <-cctx.Done():
			return s, fmt.Errorf("monitor has %d of %d routes from %s: %w", n, total, t.name, cctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	cpu1, err := procCPU(pids...)
	if err != nil {
		return s, err
	}
	s.cpu = cpu1 - cpu0
	if t.fib != nil {
		// Let the target finish its FIB before the withdrawal starts.
		if _, err := t.fib.waitCount(cctx, time.Now(), total, true); err != nil {
			return s, err
		}
	}
	t1 := time.Now()
	if err := b.injCmd(c.peers, "disable "+static); err != nil {
		return s, err
	}
	if err := poll(cctx, 10*time.Millisecond, "monitor withdrawal from "+t.name, func() (bool, error) {
		n, err := b.monCtl.imported(monProto)
		return n == 0, err
	}); err != nil {
		return s, err
	}
	s.withdraw = time.Since(t1)
	if t.fib != nil {
		if _, err := t.fib.waitCount(cctx, time.Now(), total, false); err != nil {
			return s, err
		}
	}
	return s, nil
}

func (b *b3Lab) setup(ctx context.Context) error {
	env := b.r.env
	runDir := filepath.Join(b.r.runDir, "b3")
	seg := labnet.Segment{Name: "lan", CIDR: netip.MustParsePrefix("10.0.0.0/24"), Host: "sw", Gateway: netip.MustParseAddr("10.0.0.1")}
	b.targets = []*b3Target{
		{name: "gingham-node", series: "gingham", key: "gtgt", addr: netip.MustParseAddr("10.0.0.11"), as: labnet.ClusterAS},
		{name: "gobgpd (standalone)", series: "gobgpd", key: "otgt", addr: netip.MustParseAddr("10.0.0.12"), as: 65202},
		{name: "BIRD", series: "BIRD", key: "btgt", addr: netip.MustParseAddr("10.0.0.13"), as: 65203},
		{name: "FRR (bgpd+zebra)", series: "FRR", key: "ftgt", addr: netip.MustParseAddr("10.0.0.14"), as: 65204},
	}
	var injNeighbors []labnet.Neighbor
	for i := 1; i <= b.maxPeer; i++ {
		injNeighbors = append(injNeighbors, labnet.Neighbor{Name: fmt.Sprintf("inj%d", i), Addr: b3InjAddr(i), AS: b3InjAS})
	}
	monNeighbor := labnet.Neighbor{Name: "mon", Addr: b3MonAddr, AS: b3MonAS}
	spec := labnet.Spec{Prefix: labnet.TestPrefix() + "b3-", RunDir: runDir, PoolCIDR: labnet.DefaultPool(),
		Segments: []labnet.Segment{seg},
		Nodes:    []labnet.Node{{Name: "gtgt", Segment: "lan", Addr: netip.PrefixFrom(b.targets[0].addr, 24), Gateway: seg.Gateway}},
		Routers: []labnet.Router{
			{Name: "mon", Kind: labnet.BIRD, AS: b3MonAS, RouterID: b3MonAddr},
			{Name: "otgt", Kind: labnet.BIRD, AS: 65202, RouterID: b.targets[1].addr},
			{Name: "btgt", Kind: labnet.BIRD, AS: 65203, RouterID: b.targets[2].addr, Neighbors: append(append([]labnet.Neighbor(nil), injNeighbors...), monNeighbor)},
			{Name: "ftgt", Kind: labnet.FRR, AS: 65204, RouterID: b.targets[3].addr, Neighbors: append(append([]labnet.Neighbor(nil), injNeighbors...), monNeighbor)},
		},
	}
	mesh := false
	as := int64(labnet.ClusterAS)
	spec.Objects = []client.Object{&v1.BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: v1.DefaultBGPConfigName},
		Spec: v1.BGPConfigurationSpec{NodeToNodeMeshEnabled: &mesh, ASNumber: &as}}}
	for _, n := range append(append([]labnet.Neighbor(nil), injNeighbors...), monNeighbor) {
		peerAS := int64(n.AS)
		spec.Objects = append(spec.Objects, &v1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: n.Name},
			Spec: v1.BGPPeerSpec{NodeSelector: "all()", PeerIP: n.Addr.String(), ASNumber: &peerAS}})
	}
	for i := 1; i <= b.maxPeer; i++ {
		spec.Routers = append(spec.Routers, labnet.Router{Name: fmt.Sprintf("inj%d", i), Kind: labnet.BIRD, AS: b3InjAS, RouterID: b3InjAddr(i)})
	}
	var err error
	if b.lab, err = labnet.Build(ctx, spec); err != nil {
		return err
	}
	type nsAddr struct {
		name  string
		addrs []netip.Prefix
	}
	attachments := []nsAddr{{"mon", []netip.Prefix{netip.PrefixFrom(b3MonAddr, 24)}},
		{"otgt", []netip.Prefix{netip.PrefixFrom(b.targets[1].addr, 24)}},
		{"btgt", []netip.Prefix{netip.PrefixFrom(b.targets[2].addr, 24)}},
		{"ftgt", []netip.Prefix{netip.PrefixFrom(b.targets[3].addr, 24)}}}
	for i := 1; i <= b.maxPeer; i++ {
		attachments = append(attachments, nsAddr{fmt.Sprintf("inj%d", i), []netip.Prefix{netip.PrefixFrom(b3InjAddr(i), 24)}})
	}
	for _, a := range attachments {
		if err := attach(ctx, b.lab, seg, a.name, a.addrs...); err != nil {
			return err
		}
	}
	// Injectors and monitor.
	for i := 1; i <= b.maxPeer; i++ {
		ctl, err := b.startBIRD(ctx, fmt.Sprintf("inj%d", i), b.injectorConfig(i))
		if err != nil {
			return err
		}
		b.inj = append(b.inj, ctl)
	}
	if b.monCtl, err = b.startBIRD(ctx, "mon", b.monitorConfig()); err != nil {
		return err
	}
	// Targets.
	if err := b.startGoBGPd(injNeighbors, monNeighbor); err != nil {
		return err
	}
	for _, r := range []string{"btgt", "ftgt"} {
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
	if b.agentD, err = b.lab.StartAgent("gtgt", "", agentEnv...); err != nil {
		return err
	}
	pidsOf := func(names ...string) func() []int {
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
	b.targets[0].pids = func() []int { return []int{b.agentD.PID} }
	b.targets[1].pids = pidsOf("otgt/gobgpd")
	b.targets[2].pids = pidsOf("btgt/bird")
	b.targets[3].pids = pidsOf("ftgt/bgpd", "ftgt/zebra")
	within := netip.MustParsePrefix(b3Within)
	if b.targets[0].fib, err = newFIBWatch(b.lab.NS("gtgt"), protoGingham, within); err != nil {
		return err
	}
	if b.targets[3].fib, err = newFIBWatch(b.lab.NS("ftgt"), protoFRR, within); err != nil {
		return err
	}

	// Warm up: every session of every target up at once, so that gingham
	// has seen all its peers Established (it holds learned routes back
	// from the kernel until then), then down again.
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var sessions, mons []string
	for _, t := range b.targets {
		mons = append(mons, "m_"+t.key)
		sessions = append(sessions, "i_"+t.key)
		if err := b.injCmd(b.maxPeer, "enable i_"+t.key); err != nil {
			return err
		}
	}
	if err := b.monCtl.waitStates(wctx, "Established", mons...); err != nil {
		return err
	}
	for _, ctl := range b.inj {
		if err := ctl.waitStates(wctx, "Established", sessions...); err != nil {
			return err
		}
	}
	time.Sleep(2 * time.Second)
	for _, t := range b.targets {
		if err := b.injCmd(b.maxPeer, "disable i_"+t.key); err != nil {
			return err
		}
	}
	time.Sleep(time.Second)
	return nil
}

// startBIRD starts a BIRD with conf in the named namespace and connects
// to its control socket.
func (b *b3Lab) startBIRD(ctx context.Context, name, conf string) (*birdCtl, error) {
	dir := b.lab.RouterDir(name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	sock := b.lab.BirdSocket(name)
	d, err := labnet.StartDaemon(name+"/bird", b.lab.NS(name), filepath.Join(dir, "bird.log"), nil,
		"bird", "-f", "-c", path, "-s", sock, "-P", filepath.Join(dir, "bird.pid"))
	if err != nil {
		return nil, err
	}
	b.lab.Adopt(d)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return dialBird(cctx, sock)
}

// injectorConfig renders injector i's bird.conf: a disabled static c<cell>
// for every cell using at least i peers (each cell and peer its own range),
// and a disabled session to every target.
func (b *b3Lab) injectorConfig(i int) string {
	var sb strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&sb, format+"\n", a...) }
	p("log stderr { warning, error, fatal };")
	p("router id %s;", b3InjAddr(i))
	p("protocol device { scan time 10; }")
	base := uint32(172)<<24 | uint32(16)<<16
	for ci, c := range b.cells {
		for j := 1; j <= c.peers; j++ {
			if j == i {
				writeStatic(p, fmt.Sprintf("c%d", ci), base, c.routes)
			}
			base += (uint32(c.routes) + 255) &^ 255
		}
	}
	p("template bgp inj {")
	p("  local %s as %d;", b3InjAddr(i), b3InjAS)
	p("  hold time 9; keepalive time 3; connect delay time 0; connect retry time 2; error wait time 1, 5;")
	p("  ipv4 { import none; export all; };")
	p("}")
	for _, t := range b.targets {
		p("protocol bgp i_%s from inj { disabled; neighbor %s as %d; }", t.key, t.addr, t.as)
	}
	return sb.String()
}

func (b *b3Lab) monitorConfig() string {
	var sb strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&sb, format+"\n", a...) }
	p("log stderr { warning, error, fatal };")
	p("router id %s;", b3MonAddr)
	p("protocol device { scan time 10; }")
	p("template bgp mon {")
	p("  local %s as %d;", b3MonAddr, b3MonAS)
	p("  hold time 9; keepalive time 3; connect delay time 0; connect retry time 2; error wait time 1, 5;")
	p("  ipv4 { import where net ~ [ %s{32,32} ]; export none; };", b3Within)
	p("}")
	for _, t := range b.targets {
		p("protocol bgp m_%s from mon { neighbor %s as %d; }", t.key, t.addr, t.as)
	}
	return sb.String()
}

// startGoBGPd starts the standalone gobgpd target (Debian's 3.10) with
// the same peers and timers as the others; its API listens on the
// namespace's loopback only.
func (b *b3Lab) startGoBGPd(inj []labnet.Neighbor, mon labnet.Neighbor) error {
	t := b.targets[1]
	dir := b.lab.RouterDir(t.key)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var sb strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&sb, format+"\n", a...) }
	p("[global.config]")
	p("  as = %d", t.as)
	p("  router-id = %q", t.addr)
	p("  port = 179")
	p("  local-address-list = [%q]", t.addr)
	for _, n := range append(append([]labnet.Neighbor(nil), inj...), mon) {
		p("[[neighbors]]")
		p("  [neighbors.config]")
		p("    neighbor-address = %q", n.Addr)
		p("    peer-as = %d", n.AS)
		p("  [neighbors.timers.config]")
		p("    connect-retry = 5")
		p("    hold-time = 9")
		p("    keepalive-interval = 3")
		p("  [[neighbors.afi-safis]]")
		p("    [neighbors.afi-safis.config]")
		p("      afi-safi-name = \"ipv4-unicast\"")
	}
	conf := filepath.Join(dir, "gobgpd.toml")
	if err := os.WriteFile(conf, []byte(sb.String()), 0o644); err != nil {
		return err
	}
	d, err := labnet.StartDaemon(t.key+"/gobgpd", b.lab.NS(t.key), filepath.Join(dir, "gobgpd.log"), nil,
		"gobgpd", "-f", conf, "-t", "toml", "-l", "warn", "-p", "--api-hosts", "127.0.0.1:50051", "--pprof-disable")
	if err != nil {
		return err
	}
	b.lab.Adopt(d)
	return nil
}

func (b *b3Lab) close() error {
	var errs []error
	for _, t := range b.targets {
		if t.fib != nil {
			t.fib.Close()
		}
	}
	for _, c := range b.inj {
		c.Close()
	}
	if b.monCtl != nil {
		b.monCtl.Close()
	}
	if b.lab != nil {
		errs = append(errs, b.lab.Close())
	}
	return errors.Join(errs...)
}
