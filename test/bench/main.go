// Command bench runs issue 5's BGP benchmarks (performance.md §7) in
// throwaway network namespaces, each beside its references in the same
// run, and prints Markdown tables of absolute figures and ratios:
//
//   - B4: N prefixes from a BIRD injector over eBGP into the target's
//     kernel FIB; targets gingham-node (with a real API server), BIRD
//     (protocol kernel, export all) and FRR (bgpd+zebra).
//   - B11: idle RSS of each target holding the same 1k learned routes.
//
// It needs root, bin/ from `make build`, and bird2/frr. Run it with
// `make bench-bgp`; it is a program, so `go test ./...` never runs it.
//
// Topology: namespace inj hosts BIRD (AS 65100) with one static protocol
// per size (disabled) and one BGP session per target (disabled). The
// gingham node gnode sits on a bridge in inj (10.0.0.11, injector
// 10.0.0.1); the BIRD target btgt and the FRR target ftgt sit on /31 veths
// (10.1.0.1 and 10.1.0.3). A cell enables one session, waits for
// Established, then enables the static protocol: that instant is t0, and
// the cell ends when an independent observer (netlink route events in the
// target's namespace) has seen all N routes of the target's kernel
// protocol. The static protocol is then disabled and the withdrawal timed
// the same way, and the session disabled again.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/internal/testenv"
	"github.com/gingham-net/gingham/test/labnet"
)

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
	name  string // table column
	proto string // injector's BGP protocol towards it
	ns    string
	kind  netlink.RouteProtocol
	watch *fibWatch
	pids  func() []int // processes whose RSS is summed for B11
}

type bench struct {
	lab     *labnet.Lab
	env     *testenv.Env
	runDir  string
	injSock string
	injD    *labnet.Daemon
	agentD  *labnet.Daemon
	targets []*target
	sizes   []int
}

func main() {
	sizesFlag := flag.String("sizes", "10000,100000", "B4 prefix counts, comma-separated")
	reps := flag.Int("reps", 3, "repetitions per cell")
	idle := flag.Duration("idle", 10*time.Second, "B11: idle time after convergence before RSS is read")
	skipB4 := flag.Bool("skip-b4", false, "run B11 only")
	flag.Parse()
	var sizes []int
	for _, s := range strings.Split(*sizesFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 || n > 200000 {
			fmt.Fprintf(os.Stderr, "bad size %q\n", s)
			os.Exit(2)
		}
		sizes = append(sizes, n)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, sizes, *reps, *idle, *skipB4); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, sizes []int, reps int, idle time.Duration, skipB4 bool) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces)")
	}
	b := &bench{sizes: sizes}
	defer func() { err = errors.Join(err, b.close()) }()
	if err := b.setup(ctx); err != nil {
		return err
	}
	fmt.Print(machine(ctx))

	// B11 first, on fresh processes: idle RSS with 1k routes. All three
	// targets learn the same 1k routes at once; each repetition restarts
	// them so no earlier, larger table inflates the figure.
	rss := map[string][]float64{}
	for r := 0; r < reps; r++ {
		if r > 0 {
			if err := b.restartTargets(ctx); err != nil {
				return err
			}
		}
		m, err := b.idleRSS(ctx, 1000, idle)
		if err != nil {
			return fmt.Errorf("B11 rep %d: %w", r+1, err)
		}
		for k, v := range m {
			rss[k] = append(rss[k], v)
		}
		fmt.Fprintf(os.Stderr, "B11 rep %d: %v\n", r+1, m)
	}
	printB11(rss, b.targets, idle)
	if skipB4 {
		return nil
	}

	// B4: repetitions outermost, so that load drift on the shared machine
	// hits every target alike.
	type cellKey struct {
		target string
		n      int
	}
	add := map[cellKey][]progress{}
	del := map[cellKey][]progress{}
	for r := 0; r < reps; r++ {
		for _, n := range sizes {
			for _, t := range b.targets {
				a, d, err := b.ingest(ctx, t, n)
				if err != nil {
					return fmt.Errorf("B4 rep %d, %s, %d routes: %w", r+1, t.name, n, err)
				}
				fmt.Fprintf(os.Stderr, "B4 rep %d %s n=%d: add t50 %v t99 %v t100 %v; withdraw t100 %v (events only %v/%v)\n",
					r+1, t.name, n, a.t50, a.t99, a.t100, d.t100, a.eventsOnly, d.eventsOnly)
				k := cellKey{t.name, n}
				add[k] = append(add[k], a)
				del[k] = append(del[k], d)
			}
		}
	}
	for _, n := range sizes {
		fmt.Printf("\n### B4: %d /32 prefixes from a BIRD injector into the kernel FIB (%d reps)\n\n", n, reps)
		fmt.Println("| target | t50 | t99 | t100 (median, min–max) | routes/s (N / t100 median) | gingham / target (t100) | withdraw all, t100 |")
		fmt.Println("|---|---|---|---|---|---|---|")
		gm := median(t100s(add[cellKey{b.targets[0].name, n}]))
		for _, t := range b.targets {
			ps := add[cellKey{t.name, n}]
			m := median(t100s(ps))
			lo, hi := minmax(t100s(ps))
			fmt.Printf("| %s | %.2f s | %.2f s | %.2f s (%.2f–%.2f) | %.0f | %.2f | %.2f s |\n", t.name,
				median(pick(ps, func(p progress) time.Duration { return p.t50 })),
				median(pick(ps, func(p progress) time.Duration { return p.t99 })),
				m, lo, hi, float64(n)/m, gm/m, median(t100s(del[cellKey{t.name, n}])))
		}
	}
	return nil
}

// setup starts the API server, builds the lab, starts the three targets
// and the injector.
func (b *bench) setup(ctx context.Context) error {
	env, reason, err := testenv.Start()
	if err != nil {
		return fmt.Errorf("start API server: %w", err)
	}
	if env == nil {
		return fmt.Errorf("start API server: %s", reason)
	}
	b.env = env
	if err := labnet.CleanupStale(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "cleanup of stale labs:", err)
	}
	b.runDir, err = os.MkdirTemp("/var/tmp", "gingham-bench-")
	if err != nil {
		return fmt.Errorf("run dir: %w", err)
	}
	spec := benchSpec(labnet.TestPrefix(), b.runDir)
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
		{name: "gingham-node", proto: "p_gnode", ns: b.lab.NS(nodeName), kind: protoGingham,
			pids: func() []int { return []int{b.agentD.PID} }},
		{name: "BIRD", proto: "p_btgt", ns: b.lab.NS(birdTarget), kind: protoBIRD, pids: daemonPIDs(birdTarget + "/bird")},
		{name: "FRR (bgpd+zebra)", proto: "p_ftgt", ns: b.lab.NS(frrTarget), kind: protoFRR,
			pids: daemonPIDs(frrTarget+"/bgpd", frrTarget+"/zebra")},
	}
	for _, t := range b.targets {
		if t.watch, err = newFIBWatch(t.ns, t.kind, injected); err != nil {
			return err
		}
	}
	return nil
}

func benchSpec(prefix, runDir string) labnet.Spec {
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
		p("protocol static %s {", staticName(n))
		p("  disabled;")
		p("  ipv4;")
		for i := 0; i < n; i++ {
			a := base + uint32(i)
			p("  route %d.%d.%d.%d/32 blackhole;", a>>24, a>>16&255, a>>8&255, a&255)
		}
		p("}")
		// Next size starts on the next /16 boundary after this one.
		base = (base + uint32(n) + 0xffff) &^ 0xffff
	}
	p("template bgp inj {")
	p("  local as %d;", injAS)
	p("  hold time 9; keepalive time 3; connect delay time 1; connect retry time 2; error wait time 1, 5;")
	p("  ipv4 { import none; export all; };")
	p("}")
	p("protocol bgp p_gnode from inj { disabled; neighbor 10.0.0.11 as %d; }", labnet.ClusterAS)
	p("protocol bgp p_btgt from inj { disabled; neighbor 10.1.0.1 as 65201; }")
	p("protocol bgp p_ftgt from inj { disabled; neighbor 10.1.0.3 as 65202; }")
	return sb.String()
}

// allSizes are the static protocols the injector has: B11's 1k and B4's.
func (b *bench) allSizes() []int {
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

func (b *bench) startInjector() error {
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

func (b *bench) startAgent() error {
	// Info level: debug logging of every learned route would be measured too.
	d, err := b.lab.StartAgent(nodeName, "", "GINGHAM_LOG_LEVEL=info")
	if err != nil {
		return err
	}
	b.agentD = d
	return nil
}

// restartTargets gives B11 fresh processes with identical configuration.
func (b *bench) restartTargets(ctx context.Context) error {
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

func (b *bench) birdc(ctx context.Context, args ...string) (string, error) {
	out, err := labnet.Run(ctx, "", "birdc", append([]string{"-s", b.injSock}, args...)...)
	if err != nil {
		return out, fmt.Errorf("birdc %s: %w", strings.Join(args, " "), err)
	}
	return out, nil
}

// protoState is the last column of `birdc show protocols <name>`.
func (b *bench) protoState(ctx context.Context, name string) (string, error) {
	out, err := b.birdc(ctx, "show", "protocols", name)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[0] == name {
			return f[len(f)-1], nil
		}
	}
	return "", fmt.Errorf("protocol %s not in %q", name, out)
}

func (b *bench) sessionUp(ctx context.Context, t *target) error {
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
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ingest is one B4 cell: session up, inject n routes and time them into
// the FIB, withdraw and time that, session down.
func (b *bench) ingest(ctx context.Context, t *target, n int) (add, del progress, err error) {
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
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
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
// once, then idles; VmRSS is read from /proc (summed for FRR's daemons).
func (b *bench) idleRSS(ctx context.Context, n int, idle time.Duration) (map[string]float64, error) {
	for _, t := range b.targets {
		if err := b.sessionUp(ctx, t); err != nil {
			return nil, err
		}
		if err := t.watch.resync(); err != nil {
			return nil, err
		}
	}
	if _, err := b.birdc(ctx, "enable", staticName(n)); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for _, t := range b.targets {
		if _, err := t.watch.waitCount(wctx, time.Now(), n, true); err != nil {
			return nil, err
		}
	}
	time.Sleep(idle)
	out := map[string]float64{}
	for _, t := range b.targets {
		var sum float64
		for _, pid := range t.pids() {
			kb, err := vmRSS(pid)
			if err != nil {
				return nil, err
			}
			sum += kb
		}
		out[t.name] = sum / 1024
	}
	if _, err := b.birdc(ctx, "disable", staticName(n)); err != nil {
		return nil, err
	}
	for _, t := range b.targets {
		if _, err := t.watch.waitCount(wctx, time.Now(), n, false); err != nil {
			return nil, err
		}
		if _, err := b.birdc(ctx, "disable", t.proto); err != nil {
			return nil, err
		}
	}
	return out, nil
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

func printB11(rss map[string][]float64, targets []*target, idle time.Duration) {
	fmt.Printf("\n### B11: idle RSS holding the same 1k learned /32s (%d reps, read %s after convergence, fresh processes each rep)\n\n", len(rss[targets[0].name]), idle)
	fmt.Println("| target | VmRSS MiB (median, min–max) | gingham / target |")
	fmt.Println("|---|---|---|")
	g := medianF(rss[targets[0].name])
	for _, t := range targets {
		lo, hi := minmaxF(rss[t.name])
		fmt.Printf("| %s | %.1f (%.1f–%.1f) | %.1f |\n", t.name, medianF(rss[t.name]), lo, hi, g/medianF(rss[t.name]))
	}
}

func (b *bench) close() error {
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
	if b.env != nil {
		b.env.Stop()
	}
	if b.runDir != "" {
		fmt.Fprintln(os.Stderr, "logs kept in", b.runDir)
	}
	return errors.Join(errs...)
}

// machine describes the run: cores, kernel, versions, load.
func machine(ctx context.Context) string {
	sh := func(name string, args ...string) string {
		out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
		if err != nil {
			return "?"
		}
		return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	commit := sh("git", "-C", testenv.Root(), "rev-parse", "--short", "HEAD")
	load, _ := os.ReadFile("/proc/loadavg")
	return fmt.Sprintf("Machine: nproc %s, kernel %s; %s; FRR %s; gingham %s; load average at start %s\n",
		sh("nproc"), sh("uname", "-r"), sh("bird", "--version"), sh("/usr/lib/frr/bgpd", "--version"), commit,
		strings.Join(strings.Fields(string(load))[:3], " "))
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

// median and minmax return seconds.
func median(ds []time.Duration) float64 {
	fs := make([]float64, len(ds))
	for i, d := range ds {
		fs[i] = d.Seconds()
	}
	return medianF(fs)
}

func minmax(ds []time.Duration) (float64, float64) {
	fs := make([]float64, len(ds))
	for i, d := range ds {
		fs[i] = d.Seconds()
	}
	return minmaxF(fs)
}

func medianF(fs []float64) float64 {
	if len(fs) == 0 {
		return 0
	}
	s := append([]float64(nil), fs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func minmaxF(fs []float64) (float64, float64) {
	if len(fs) == 0 {
		return 0, 0
	}
	lo, hi := fs[0], fs[0]
	for _, f := range fs {
		lo, hi = min(lo, f), max(hi, f)
	}
	return lo, hi
}
