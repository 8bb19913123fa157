package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/ipam"
	"github.com/gingham-net/gingham/ipam/k8sstore"
	"github.com/gingham-net/gingham/test/bench/result"
	"github.com/gingham-net/gingham/test/labnet"
)

// B5: K nodes (labnet.MeshSpec: node1..nodeK, 10.0.0.11.., one bridge in
// a switch namespace), one API server. Each node owns one /26 of the
// default pool, claimed through the IPAM library before the agents start
// (as after a cluster restart: the blocks exist, the agents do not run).
//
// A gingham cell registers the K Nodes, starts the K agents (t0 just
// before the first) and ends when every node's kernel has the K−1 remote
// blocks (unicast routes of protocol 96 inside the pool, seen by netlink
// route events). Sessions: when every GinghamNodeStatus (watched through
// the API) first lists K−1 Established sessions. RSS and CPU-seconds per
// agent are read from /proc at convergence (median over the agents).
//
// The reference cell runs the same mesh of K BIRDs in the same namespaces
// with Calico's mesh template: iBGP, graceful restart, connect delay 2,
// connect retry 5, error wait 5,30, the higher address passive, one static
// blackhole /26 exported, `protocol kernel` exporting what it learns; it
// ends when every kernel has the K−1 blocks (protocol bird).

const b5Pool = "10.244.0.0/16"

type b5Sample struct {
	routes, sessions time.Duration
	rss, cpu         float64 // per agent (median over the K)
}

type b5Lab struct {
	r      *runner
	lab    *labnet.Lab
	blocks map[string]netip.Prefix // node → its block
}

func (r *runner) b5(ctx context.Context) (err error) {
	started := time.Now()
	ks := slices.Clone(r.opts.b5K)
	slices.Sort(ks)
	kmax := ks[len(ks)-1]
	b := &b5Lab{r: r, blocks: map[string]netip.Prefix{}}
	runDir := filepath.Join(r.runDir, "b5")
	b.lab, err = labnet.Build(ctx, labnet.MeshSpec(labnet.TestPrefix()+"b5-", runDir, kmax))
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, b.lab.Close()) }()
	if err := b.lab.StartAPIProxies(r.env.Config, r.env.Kubeconfig); err != nil {
		return err
	}
	if err := b.staticNeighbors(ctx); err != nil {
		return err
	}
	if err := b.lab.ApplyObjects(ctx, r.env.Client); err != nil {
		return err
	}
	alloc := ipam.New(k8sstore.New(r.env.Client), ipam.Options{})
	for _, n := range b.lab.Spec.Nodes {
		a, err := alloc.Assign(ctx, ipam.AssignRequest{Handle: "bench-b5." + n.Name, Node: n.Name})
		if err != nil {
			return fmt.Errorf("claim a block for %s: %w", n.Name, err)
		}
		b.blocks[n.Name] = ipam.BlockOf(a, v1.DefaultBlockSizeIPv4)
	}

	type key struct {
		system string
		k      int
	}
	samples := map[key][]b5Sample{}
	for rep := 0; rep < r.opts.reps; rep++ {
		for _, k := range ks {
			g, err := b.ginghamCell(ctx, k)
			if err != nil {
				return fmt.Errorf("B5 rep %d, gingham K=%d: %w", rep+1, k, err)
			}
			logf("B5 rep %d gingham K=%d: routes %v, sessions %v, RSS/agent %.1f MiB, CPU/agent %.2f s", rep+1, k, g.routes, g.sessions, g.rss, g.cpu)
			samples[key{"gingham", k}] = append(samples[key{"gingham", k}], g)
			bs, err := b.birdCell(ctx, k)
			if err != nil {
				return fmt.Errorf("B5 rep %d, BIRD K=%d: %w", rep+1, k, err)
			}
			logf("B5 rep %d BIRD K=%d: routes %v, sessions %v, RSS/BIRD %.1f MiB, CPU/BIRD %.2f s", rep+1, k, bs.routes, bs.sessions, bs.rss, bs.cpu)
			samples[key{"BIRD", k}] = append(samples[key{"BIRD", k}], bs)
		}
	}

	f := r.info.newFile("B5", "Full-mesh scale",
		"K nodes in K network namespaces on one Linux bridge, one kube-apiserver+etcd; each node owns one /26 of the default pool (claimed through the IPAM library before the agents start). "+
			"gingham: the K Nodes are registered, the K agents started (t0 just before the first); converged when every node's kernel has the K−1 remote blocks (unicast routes of protocol 96 in the pool, netlink route events); "+
			"sessions: when every GinghamNodeStatus (API watch) first lists K−1 Established sessions; RSS and CPU-seconds per agent from /proc at convergence, median over the agents. "+
			"Reference in the same run and namespaces: K BIRDs with Calico's mesh template (iBGP, graceful restart, connect delay 2 s, connect retry 5 s, error wait 5–30 s, higher address passive, one static blackhole /26 exported, protocol kernel), "+
			"converged when every kernel has the K−1 blocks (protocol bird); sessions read from each BIRD's control socket every 250 ms. Repetitions outermost.", started)
	stat := func(ss []b5Sample, fn func(b5Sample) float64) result.Stat {
		xs := make([]float64, len(ss))
		for i, s := range ss {
			xs[i] = fn(s)
		}
		return result.StatOf(xs)
	}
	conv := map[string]*result.Curve{}
	mem := map[string]*result.Curve{}
	for _, sys := range []string{"gingham", "BIRD"} {
		conv[sys] = &result.Curve{Chart: "b5-mesh-convergence", Title: "Full mesh of K nodes: start → every kernel has the K−1 blocks",
			XLabel: "K (nodes)", YLabel: "seconds", Series: sys}
		mem[sys] = &result.Curve{Chart: "b5-mesh-memory", Title: "Full mesh of K nodes: RSS per agent at convergence",
			XLabel: "K (nodes)", YLabel: "MiB per agent", Series: sys}
	}
	fmt.Printf("\n### B5: full mesh of K nodes, start → every kernel has the K−1 remote blocks (%d reps)\n\n", r.opts.reps)
	fmt.Println("| K | system | converged (median, min–max) | gingham / BIRD | all sessions Established | RSS MiB per agent | CPU-s per agent to converge |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, k := range ks {
		g, bd := samples[key{"gingham", k}], samples[key{"BIRD", k}]
		metrics := []struct {
			name, unit string
			fn         func(b5Sample) float64
		}{
			{"mesh converged (K−1 blocks in every kernel)", "s", func(s b5Sample) float64 { return s.routes.Seconds() }},
			{"all sessions Established", "s", func(s b5Sample) float64 { return s.sessions.Seconds() }},
			{"RSS per agent at convergence", "MiB", func(s b5Sample) float64 { return s.rss }},
			{"CPU-seconds per agent, start → converged", "s", func(s b5Sample) float64 { return s.cpu }},
		}
		for _, sys := range []struct {
			name string
			ss   []b5Sample
		}{{"gingham", g}, {"BIRD", bd}} {
			c := stat(sys.ss, metrics[0].fn)
			fmt.Printf("| %d | %s | %s s | %s | %.2f s | %s | %.2f |\n", k, sys.name, markdownStat(c, "%.2f"),
				ratio(stat(g, metrics[0].fn), c), stat(sys.ss, metrics[1].fn).Median, markdownStat(stat(sys.ss, metrics[2].fn), "%.1f"),
				stat(sys.ss, metrics[3].fn).Median)
			conv[sys.name].Points = append(conv[sys.name].Points, result.Point{X: float64(k), Y: c})
			mem[sys.name].Points = append(mem[sys.name].Points, result.Point{X: float64(k), Y: stat(sys.ss, metrics[2].fn)})
		}
		for mi, m := range metrics {
			fig := result.Figure{Bench: "B5", Name: fmt.Sprintf("K=%d: %s", k, m.name), Unit: m.unit, Lower: true,
				Gingham: stat(g, m.fn), Refs: []result.Value{{Name: "BIRD", Stat: stat(bd, m.fn)}}}
			switch {
			case mi == 0 && k == 50:
				fig.Goal = "K=50: mesh converged ≤ 30 s and ≤ 2× BIRD"
				ok := fig.Gingham.Median <= 30 && fig.Gingham.Median <= 2*fig.Refs[0].Stat.Median
				fig.Met = &ok
			case mi == 2:
				fig.Goal = "per-agent RSS ≤ 64 MiB"
				fig.Met = met(fig.Gingham, 64)
			}
			f.Figures = append(f.Figures, fig)
		}
	}
	for _, sys := range []string{"gingham", "BIRD"} {
		f.Curves = append(f.Curves, *conv[sys])
	}
	for _, sys := range []string{"gingham", "BIRD"} {
		f.Curves = append(f.Curves, *mem[sys])
	}
	f.Notes = append(f.Notes,
		"Every node has permanent ARP entries for the others: the kernel's ARP table limit (gc_thresh3 = 1024) is shared by all namespaces, and a 50-node mesh needs 2450 entries; with dynamic ARP the table overflows and the mesh never converges (a lab artifact, not a product one).",
		"gingham's time includes process start, the API sync of every agent (K agents and the API server share 2 cores), the Node annotations each agent writes before its peers can dial it, and the agent's hold-back of learned routes until every session has been Established for a quiet second.",
		"gingham's mesh sessions keep the default timers (mesh keepalive/hold are not configurable: 20 s / 60 s); BIRD uses Calico's mesh timers. Neither waits on a hold timer here.",
		"The sessions time of gingham is when the last node's status object showed K−1 Established sessions, so it includes the status write; BIRD's is polled every 250 ms.",
		"The BIRD reference has no API server, no IPAM and no status writes: it is the floor for a mesh of this size, not a like-for-like agent.")
	if !slices.Contains(ks, 50) {
		f.Notes = append(f.Notes, "K=50 was not run in this invocation (see -b5-k); the goal figure is defined at K=50.")
	}
	f.Finished = time.Now()
	return r.write(f)
}

// staticNeighbors gives every node a permanent ARP entry for every other
// node. The kernel's ARP table limit (net.ipv4.neigh.default.gc_thresh3,
// 1024 by default) is global across all namespaces, and a full mesh of K
// nodes needs K×(K−1) entries: at K=50 the table overflows ("neighbor
// table overflow!"), ARP fails and sessions never come up. Permanent
// entries are exempt from that limit, so the host's settings stay as
// they are.
func (b *b5Lab) staticNeighbors(ctx context.Context) error {
	type ll struct {
		Address string `json:"address"`
	}
	macs := map[string]string{}
	for _, n := range b.lab.Spec.Nodes {
		out, err := b.lab.Run(ctx, n.Name, "ip", "-j", "link", "show", "eth0")
		if err != nil {
			return err
		}
		var links []ll
		if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) == 0 {
			return fmt.Errorf("mac of %s: %q: %v", n.Name, out, err)
		}
		macs[n.Name] = links[0].Address
	}
	for _, n := range b.lab.Spec.Nodes {
		var batch strings.Builder
		for _, o := range b.lab.Spec.Nodes {
			if o.Name != n.Name {
				fmt.Fprintf(&batch, "neigh replace %s lladdr %s dev eth0 nud permanent\n", o.Addr.Addr(), macs[o.Name])
			}
		}
		cmd := labnet.Command(ctx, b.lab.NS(n.Name), "ip", "-batch", "-")
		cmd.Stdin = strings.NewReader(batch.String())
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("static neighbors on %s: %w: %s", n.Name, err, out)
		}
	}
	return nil
}

// nodes returns the first k nodes of the lab.
func (b *b5Lab) nodes(k int) []labnet.Node { return b.lab.Spec.Nodes[:k] }

// watchAll starts one route watch per node for proto (unicast routes
// inside the pool).
func (b *b5Lab) watchAll(nodes []labnet.Node, proto int) ([]*fibWatch, error) {
	var ws []*fibWatch
	for _, n := range nodes {
		w, err := newFIBWatchOpts(b.lab.NS(n.Name), netlink.RouteProtocol(proto), netip.MustParsePrefix(b5Pool), watchOptions{unicastOnly: true})
		if err != nil {
			for _, w := range ws {
				w.Close()
			}
			return nil, err
		}
		ws = append(ws, w)
	}
	return ws, nil
}

// waitMesh waits until every watch counts at least want routes, logging
// progress every 10 s.
func waitMesh(ctx context.Context, ws []*fibWatch, want int) error {
	start, lastLog := time.Now(), time.Now()
	err := poll(ctx, 20*time.Millisecond, fmt.Sprintf("%d routes on every node", want), func() (bool, error) {
		done, least := 0, want
		for _, w := range ws {
			c, _, err := w.count()
			if err != nil {
				return false, err
			}
			if c >= want {
				done++
			}
			least = min(least, c)
		}
		if time.Since(lastLog) >= 10*time.Second {
			lastLog = time.Now()
			logf("  mesh after %s: %d of %d nodes complete, fewest routes %d of %d", time.Since(start).Round(time.Second), done, len(ws), least, want)
		}
		return done == len(ws), nil
	})
	if err != nil {
		var short []string
		for _, w := range ws {
			if c, _, _ := w.count(); c < want {
				short = append(short, fmt.Sprintf("%s:%d", w.nsName, c))
			}
		}
		return fmt.Errorf("%w; nodes short of routes: %s", err, strings.Join(short, " "))
	}
	return nil
}

// perProcess is the median RSS (MiB) and CPU-seconds of the processes.
// converged waits until every watched kernel has the K−1 remote blocks,
// then records the time since t0 and the daemons' RSS and CPU per process.
func (s *b5Sample) converged(ctx context.Context, ws []*fibWatch, k int, t0 time.Time, daemons []*labnet.Daemon) error {
	if err := waitMesh(ctx, ws, k-1); err != nil {
		return err
	}
	s.routes = time.Since(t0)
	pids := make([]int, 0, len(daemons))
	for _, d := range daemons {
		pids = append(pids, d.PID)
	}
	var err error
	s.rss, s.cpu, err = perProcess(pids)
	return err
}

func perProcess(pids []int) (rss, cpu float64, err error) {
	var rs, cs []float64
	for _, pid := range pids {
		r, err := procRSS(pid)
		if err != nil {
			return 0, 0, err
		}
		c, err := procCPU(pid)
		if err != nil {
			return 0, 0, err
		}
		rs, cs = append(rs, r), append(cs, c)
	}
	return result.StatOf(rs).Median, result.StatOf(cs).Median, nil
}

func (b *b5Lab) ginghamCell(ctx context.Context, k int) (s b5Sample, err error) {
	c := b.r.env.Client
	nodes := b.nodes(k)
	sub := b.lab.Spec
	sub.Nodes = nodes
	if err := labnet.Attach(sub).RegisterNodes(ctx, c); err != nil {
		return s, err
	}
	ws, err := b.watchAll(nodes, protoGingham)
	if err != nil {
		return s, err
	}
	var daemons []*labnet.Daemon
	defer func() {
		for _, w := range ws {
			w.Close()
		}
		cctx := context.WithoutCancel(ctx) // clean up even when interrupted
		err = errors.Join(err, b.stopAll(daemons), b.cleanAPI(cctx), b.flush(cctx, nodes, protoGingham))
	}()
	wctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	sessions, err := watchSessions(wctx, b.r, k)
	if err != nil {
		return s, err
	}
	t0 := time.Now()
	for _, n := range nodes {
		d, err := b.lab.StartAgent(n.Name, "", agentEnv...)
		if err != nil {
			return s, err
		}
		daemons = append(daemons, d)
	}
	if err := s.converged(wctx, ws, k, t0, daemons); err != nil {
		return s, err
	}
	last, err := sessions.wait(wctx)
	if err != nil {
		return s, err
	}
	s.sessions = last.Sub(t0)
	return s, nil
}

// sessionWatch records when each node's GinghamNodeStatus first lists
// k−1 Established sessions (a List of the statuses every 250 ms).
type sessionWatch struct {
	k    int
	mu   sync.Mutex
	seen map[string]time.Time
	err  chan error
}

func watchSessions(ctx context.Context, r *runner, k int) (*sessionWatch, error) {
	sw := &sessionWatch{k: k, seen: map[string]time.Time{}, err: make(chan error, 1)}
	go func() {
		sw.err <- poll(ctx, 250*time.Millisecond, "node statuses with every session Established", func() (bool, error) {
			var list v1.GinghamNodeStatusList
			if err := r.env.Client.List(ctx, &list); err != nil {
				return false, err
			}
			now := time.Now()
			sw.mu.Lock()
			defer sw.mu.Unlock()
			for _, st := range list.Items {
				est := 0
				for _, s := range st.Status.Sessions {
					if s.State == "Established" {
						est++
					}
				}
				if _, dup := sw.seen[st.Name]; !dup && est >= k-1 {
					sw.seen[st.Name] = now
				}
			}
			return len(sw.seen) >= k, nil
		})
	}()
	return sw, nil
}

// wait returns when the last node had all its sessions Established.
func (sw *sessionWatch) wait(ctx context.Context) (time.Time, error) {
	var err error
	select {
	case err = <-sw.err:
	case <-ctx.Done():
		err = ctx.Err()
	}
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if err != nil {
		return time.Time{}, fmt.Errorf("only %d of %d node statuses showed every session Established: %w", len(sw.seen), sw.k, err)
	}
	var last time.Time
	for _, t := range sw.seen {
		if t.After(last) {
			last = t
		}
	}
	return last, nil
}

// stopAll stops daemons in parallel (SIGTERM, SIGKILL after 10 s).
func (b *b5Lab) stopAll(ds []*labnet.Daemon) error {
	var wg sync.WaitGroup
	errs := make([]error, len(ds))
	for i, d := range ds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.lab.StopDaemon(d.Name, 10*time.Second)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// cleanAPI deletes the Nodes and their statuses (blocks, pools and the
// BGPConfiguration stay).
func (b *b5Lab) cleanAPI(ctx context.Context) error {
	c := b.r.env.Client
	var errs []error
	for _, o := range []client.Object{&corev1.Node{}, &v1.GinghamNodeStatus{}} {
		if err := c.DeleteAllOf(ctx, o); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// flush removes a protocol's routes from the nodes' kernels.
func (b *b5Lab) flush(ctx context.Context, nodes []labnet.Node, proto int) error {
	var errs []error
	for _, n := range nodes {
		errs = append(errs, flushProto(ctx, b.lab.NS(n.Name), proto))
	}
	return errors.Join(errs...)
}

func (b *b5Lab) birdCell(ctx context.Context, k int) (s b5Sample, err error) {
	nodes := b.nodes(k)
	ws, err := b.watchAll(nodes, protoBIRD)
	if err != nil {
		return s, err
	}
	var daemons []*labnet.Daemon
	var ctls []*birdCtl
	defer func() {
		for _, w := range ws {
			w.Close()
		}
		for _, c := range ctls {
			c.Close()
		}
		err = errors.Join(err, b.stopAll(daemons), b.flush(context.WithoutCancel(ctx), nodes, protoBIRD))
	}()
	var confs, socks []string
	for _, n := range nodes {
		dir := b.lab.NodeDir(n.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return s, err
		}
		conf := filepath.Join(dir, "bird-mesh.conf")
		if err := os.WriteFile(conf, []byte(calicoMeshBIRD(n, nodes, []netip.Prefix{b.blocks[n.Name]}, calicoTimers{})), 0o644); err != nil {
			return s, err
		}
		sock := filepath.Join(dir, "bird.ctl")
		_ = os.Remove(sock)
		confs, socks = append(confs, conf), append(socks, sock)
	}
	wctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	t0 := time.Now()
	for i, n := range nodes {
		d, err := labnet.StartDaemon(n.Name+"/bird", b.lab.NS(n.Name), filepath.Join(b.lab.NodeDir(n.Name), "bird.log"), nil,
			"bird", "-f", "-c", confs[i], "-s", socks[i], "-P", filepath.Join(b.lab.NodeDir(n.Name), "bird.pid"))
		if err != nil {
			return s, err
		}
		b.lab.Adopt(d)
		daemons = append(daemons, d)
	}
	for _, sock := range socks {
		c, err := dialBird(wctx, sock)
		if err != nil {
			return s, err
		}
		ctls = append(ctls, c)
	}
	// Sessions: poll every BIRD until all its K−1 sessions are up.
	sessDone := make([]time.Time, k)
	sessErr := make(chan error, 1)
	go func() {
		sessErr <- poll(wctx, 250*time.Millisecond, "BIRD mesh sessions", func() (bool, error) {
			all := true
			for i, c := range ctls {
				if !sessDone[i].IsZero() {
					continue
				}
				states, err := c.protocolStates()
				if err != nil {
					return false, err
				}
				est := 0
				for name, st := range states {
					if strings.HasPrefix(name, "Mesh_") && st == "Established" {
						est++
					}
				}
				if est >= k-1 {
					sessDone[i] = time.Now()
				} else {
					all = false
				}
			}
			return all, nil
		})
	}()
	if err := s.converged(wctx, ws, k, t0, daemons); err != nil {
		return s, err
	}
	if err := <-sessErr; err != nil {
		return s, err
	}
	var last time.Time
	for _, t := range sessDone {
		if t.After(last) {
			last = t
		}
	}
	s.sessions = last.Sub(t0)
	return s, nil
}

// calicoTimers are the BGP timers of a Calico-style BIRD; zero values keep
// BIRD's defaults (hold 240 s) as Calico does.
type calicoTimers struct {
	hold, keepalive, gr time.Duration
}

// calicoMeshBIRD renders a Calico-style bird.conf for node me in a full
// mesh with nodes: its blocks as static blackholes exported over iBGP,
// learned blocks into the kernel, and Calico's mesh template (graceful
// restart, connect delay 2, retry 5, error wait 5,30; the higher address
// is passive, as gingham's mesh).
func calicoMeshBIRD(me labnet.Node, nodes []labnet.Node, blocks []netip.Prefix, t calicoTimers) string {
	var sb strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&sb, format+"\n", a...) }
	addr := me.Addr.Addr()
	p("log stderr { warning, error, fatal };")
	p("router id %s;", addr)
	p("protocol device { scan time 2; }")
	p("protocol direct { ipv4; interface -\"cali*\", \"*\"; }")
	p("protocol kernel {")
	p("  scan time 2; merge paths on; graceful restart; persist;")
	p("  ipv4 { import none; export all; };")
	p("}")
	p("protocol static blocks {")
	p("  ipv4;")
	for _, b := range blocks {
		p("  route %s blackhole;", b)
	}
	p("}")
	p("template bgp mesh {")
	p("  local %s as %d;", addr, labnet.ClusterAS)
	p("  ipv4 { import all; export where proto = \"blocks\"; gateway recursive; };")
	gr := "  graceful restart;"
	if t.gr > 0 {
		gr = fmt.Sprintf("  graceful restart; graceful restart time %d;", int(t.gr.Seconds()))
	}
	p("%s", gr)
	if t.hold > 0 {
		p("  hold time %d; keepalive time %d;", int(t.hold.Seconds()), int(t.keepalive.Seconds()))
	}
	p("  connect delay time 2; connect retry time 5; error wait time 5, 30;")
	p("}")
	for _, n := range nodes {
		if n.Name == me.Name {
			continue
		}
		peer := n.Addr.Addr()
		p("protocol bgp Mesh_%s from mesh {", strings.ReplaceAll(peer.String(), ".", "_"))
		p("  neighbor %s as %d;", peer, labnet.ClusterAS)
		if addr.Compare(peer) > 0 {
			p("  passive on;")
		}
		p("}")
	}
	return sb.String()
}
