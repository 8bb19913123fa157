package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gingham-net/gingham/test/bench/result"
	"github.com/gingham-net/gingham/test/labnet"
)

// B9's topology (performance.md §4.3 and Appendix A): host namespaces hA
// and hB joined by a veth underlay (10.0.0.1/24 – 10.0.0.2/24); on each
// host one pod attached by the real gingham CNI plugin (bin/gingham as
// type "gingham", host-local IPAM from the host's /26 block) and one pod
// attached by hand the same Calico way (the reference of Appendix A, its
// own /26). Each host routes the other's blocks via the underlay, as felix
// does in native mode (`<block> via <peer> dev eth0 proto 96`), and has a
// default route via the other host, as a node has via its gateway.
const (
	underlayA = "10.0.0.1"
	underlayB = "10.0.0.2"
	iperfPort = "5201"
)

var (
	ginghamBlocks = [2]netip.Prefix{netip.MustParsePrefix("10.244.0.0/26"), netip.MustParsePrefix("10.244.1.0/26")}
	refBlocks     = [2]netip.Prefix{netip.MustParsePrefix("10.245.0.0/26"), netip.MustParsePrefix("10.245.1.0/26")}
)

type dataplane struct {
	prefix   string // namespace names: <prefix>hA, …
	runDir   string
	plugin   string
	mtu      int
	seconds  int
	hosts    [2]string
	gPods    [2]string // namespaces of the gingham pods
	rPods    [2]string // namespaces of the hand-built pods
	gIPs     [2]netip.Addr
	rIPs     [2]netip.Addr
	attached [2]bool
}

func cmdDataplane(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dataplane", flag.ExitOnError)
	dir := fs.String("results", DefaultResults, "results directory")
	reps := fs.Int("reps", 3, "repetitions of each path, in turn")
	seconds := fs.Int("t", 5, "iperf3 seconds per run (after 1 s omitted)")
	mtu := fs.Int("mtu", 1500, "underlay MTU (the pods get the same: native routing)")
	keep := fs.Bool("keep", false, "leave the namespaces for inspection (remove them with ip netns del)")
	_ = fs.Parse(args)
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces)")
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	for _, tool := range []string{"iperf3", "ss"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("B9 needs %s: %w", tool, err)
		}
	}
	d := &dataplane{prefix: fmt.Sprintf("gb9-%d-", os.Getpid()), plugin: filepath.Join(root, "bin", "gingham"), mtu: *mtu, seconds: *seconds}
	if _, err := os.Stat(d.plugin); err != nil {
		return fmt.Errorf("B9 needs the plugin from make build: %w", err)
	}
	if d.runDir, err = os.MkdirTemp("/var/tmp", "gingham-b9-"); err != nil {
		return err
	}
	cleanupStaleB9(ctx)
	started := time.Now()
	defer func() {
		if *keep {
			fmt.Fprintf(os.Stderr, "B9: namespaces %s* kept\n", d.prefix)
			return
		}
		// Clean up even when interrupted: a fresh context.
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err = errors.Join(err, d.teardown(cctx))
	}()
	if err := d.setup(ctx); err != nil {
		return err
	}
	f, err := d.measure(ctx, *reps)
	if err != nil {
		return err
	}
	f.Started, f.Finished = started, time.Now()
	return f.Write(*dir)
}

// cleanupStaleB9 removes the namespaces of earlier runs that died.
func cleanupStaleB9(ctx context.Context) {
	names, _ := labnet.ListNetNS("gb9-")
	for _, n := range names {
		f := strings.SplitN(n, "-", 3)
		if pid, err := strconv.Atoi(f[1]); err == nil && len(f) == 3 && !labnet.Alive(pid) {
			_ = labnet.DeleteNetNS(ctx, n)
		}
	}
}

func (d *dataplane) ns(name string) string { return d.prefix + name }

func (d *dataplane) setup(ctx context.Context) error {
	d.hosts = [2]string{d.ns("hA"), d.ns("hB")}
	d.gPods = [2]string{d.ns("pA"), d.ns("pB")}
	d.rPods = [2]string{d.ns("rA"), d.ns("rB")}
	for _, n := range append(append(d.hosts[:], d.gPods[:]...), d.rPods[:]...) {
		if err := labnet.AddNetNS(ctx, n); err != nil {
			return err
		}
	}
	hA, hB := d.hosts[0], d.hosts[1]
	mtu := strconv.Itoa(d.mtu)
	steps := [][]string{
		{hA, "ip", "link", "add", "eth0", "mtu", mtu, "type", "veth", "peer", "name", "eth0", "mtu", mtu, "netns", hB},
		{hA, "ip", "addr", "add", underlayA + "/24", "dev", "eth0"},
		{hB, "ip", "addr", "add", underlayB + "/24", "dev", "eth0"},
		{hA, "ip", "link", "set", "eth0", "up"},
		{hB, "ip", "link", "set", "eth0", "up"},
		// A node's default gateway (here: the other host). Proxy ARP
		// answers the pods' 169.254.1.1 only for an address the host can
		// route out of another interface.
		{hA, "ip", "route", "add", "default", "via", underlayB, "dev", "eth0"},
		{hB, "ip", "route", "add", "default", "via", underlayA, "dev", "eth0"},
		{hA, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
		{hB, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
	}
	for _, s := range steps {
		if _, err := labnet.Run(ctx, s[0], s[1], s[2:]...); err != nil {
			return err
		}
	}
	peer := [2]string{underlayB, underlayA}
	for i := range 2 {
		ip, err := d.cni(ctx, "ADD", i)
		if err != nil {
			return err
		}
		d.gIPs[i], d.attached[i] = ip, true
		if err := d.handBuiltPod(ctx, i); err != nil {
			return err
		}
		// The routes felix programs in native mode for the other host's blocks.
		for _, b := range []netip.Prefix{ginghamBlocks[1-i], refBlocks[1-i]} {
			if _, err := labnet.Run(ctx, d.hosts[i], "ip", "route", "replace", b.String(), "via", peer[i], "dev", "eth0", "proto", "96"); err != nil {
				return err
			}
		}
	}
	return nil
}

// cni runs the gingham plugin for host i's pod.
func (d *dataplane) cni(ctx context.Context, command string, i int) (netip.Addr, error) {
	state := filepath.Join(d.runDir, d.hosts[i])
	conf, err := json.Marshal(map[string]any{
		"cniVersion": "1.0.0", "name": "bench", "type": "gingham", "mtu": d.mtu, "stateDir": state,
		"ipam": map[string]any{"type": "host-local", "dataDir": filepath.Join(state, "ipam"),
			"ranges": [][]map[string]string{{{"subnet": ginghamBlocks[i].String()}}}},
	})
	if err != nil {
		return netip.Addr{}, err
	}
	cmd := labnet.Command(ctx, d.hosts[i], d.plugin)
	cmd.Env = append(os.Environ(), "CNI_COMMAND="+command, "CNI_CONTAINERID=b9pod"+strconv.Itoa(i),
		"CNI_NETNS="+labnet.NetNSPath(d.gPods[i]), "CNI_IFNAME=eth0", "CNI_PATH=/usr/lib/cni",
		"CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=pod"+strconv.Itoa(i))
	cmd.Stdin = strings.NewReader(string(conf))
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			stderr = string(ee.Stderr)
		}
		return netip.Addr{}, fmt.Errorf("gingham CNI %s on %s: %w: %s %s", command, d.hosts[i], err, out, stderr)
	}
	if command != "ADD" {
		return netip.Addr{}, nil
	}
	var res struct {
		IPs []struct {
			Address string `json:"address"`
		} `json:"ips"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.IPs) == 0 {
		return netip.Addr{}, fmt.Errorf("gingham CNI ADD on %s: no address in %s (%v)", d.hosts[i], out, err)
	}
	p, err := netip.ParsePrefix(res.IPs[0].Address)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("gingham CNI ADD: %w", err)
	}
	return p.Addr(), nil
}

// handBuiltPod attaches host i's reference pod with the commands of
// performance.md Appendix A.
func (d *dataplane) handBuiltPod(ctx context.Context, i int) error {
	h, p := d.hosts[i], d.rPods[i]
	ip := refBlocks[i].Addr().Next().Next()
	d.rIPs[i] = ip
	mtu := strconv.Itoa(d.mtu)
	steps := [][]string{
		{h, "ip", "link", "add", "ref0", "mtu", mtu, "type", "veth", "peer", "name", "eth0", "mtu", mtu, "netns", p},
		{p, "ip", "addr", "add", ip.String() + "/32", "dev", "eth0"},
		{p, "ip", "link", "set", "eth0", "up"},
		{p, "ip", "route", "add", "169.254.1.1", "dev", "eth0", "scope", "link"},
		{p, "ip", "route", "add", "default", "via", "169.254.1.1", "dev", "eth0"},
		{h, "ip", "link", "set", "ref0", "address", "ee:ee:ee:ee:ee:ee", "up"},
		{h, "sysctl", "-qw", "net.ipv4.conf.ref0.proxy_arp=1"},
		{p, "ip", "neigh", "add", "169.254.1.1", "lladdr", "ee:ee:ee:ee:ee:ee", "dev", "eth0", "nud", "permanent"},
		{h, "ip", "route", "add", ip.String() + "/32", "dev", "ref0", "scope", "link"},
	}
	for _, s := range steps {
		if _, err := labnet.Run(ctx, s[0], s[1], s[2:]...); err != nil {
			return fmt.Errorf("hand-built pod on %s: %w", h, err)
		}
	}
	return nil
}

func (d *dataplane) teardown(ctx context.Context) error {
	var errs []error
	for i := range 2 {
		if d.attached[i] {
			if _, err := d.cni(ctx, "DEL", i); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, n := range append(append(d.hosts[:], d.gPods[:]...), d.rPods[:]...) {
		if n != "" {
			if err := labnet.DeleteNetNS(ctx, n); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if d.runDir != "" {
		_ = os.RemoveAll(d.runDir)
	}
	return errors.Join(errs...)
}

// path is one measured TCP path: client namespace → server address in the
// server namespace.
type path struct {
	name               string
	client, server     string
	serverIP           netip.Addr
	gbps, retr, cpuSnd []float64
}

// iperf is one run's result.
type iperf struct {
	gbps    float64
	retr    float64
	cpuSend float64
}

func (d *dataplane) measure(ctx context.Context, reps int) (*result.File, error) {
	paths := []*path{
		{name: "host→host over the underlay veth", client: d.hosts[0], server: d.hosts[1], serverIP: netip.MustParseAddr(underlayB)},
		{name: "gingham", client: d.gPods[0], server: d.gPods[1], serverIP: d.gIPs[1]},
		{name: "hand-built pod path (Appendix A)", client: d.rPods[0], server: d.rPods[1], serverIP: d.rIPs[1]},
	}
	// The MTU check first: it also proves both pod paths work.
	pass, fail, podMTU, err := d.mtuCheck(ctx)
	if err != nil {
		return nil, err
	}
	for rep := 1; rep <= reps; rep++ {
		for _, p := range paths {
			r, err := d.iperf(ctx, p, rep)
			if err != nil {
				return nil, fmt.Errorf("B9 rep %d, %s: %w", rep, p.name, err)
			}
			fmt.Fprintf(os.Stderr, "B9 rep %d %s: %.2f Gbit/s, %.0f retransmits, sender CPU %.0f %%\n", rep, p.name, r.gbps, r.retr, r.cpuSend)
			p.gbps, p.retr, p.cpuSnd = append(p.gbps, r.gbps), append(p.retr, r.retr), append(p.cpuSnd, r.cpuSend)
		}
	}
	host, g, hand := paths[0], paths[1], paths[2]
	gs, hs := result.StatOf(g.gbps), result.StatOf(host.gbps)
	f := &result.File{Bench: "B9", Title: "Dataplane throughput, native routing",
		Method: fmt.Sprintf("Two host namespaces joined by a veth underlay (MTU %d). On each host, one pod attached by the real "+
			"gingham CNI plugin (`bin/gingham`, host-local IPAM from the host's /26) and one attached by hand the same Calico "+
			"way (performance.md Appendix A: veth, /32, 169.254.1.1 via proxy ARP and a permanent neighbour). Each host routes "+
			"the other's /26 blocks via the underlay, as felix does in native mode, and has a default route via the other "+
			"(a node's gateway: proxy ARP answers 169.254.1.1 only for a routable address). iperf3 `-t %d -O 1 -J`, one TCP stream, "+
			"client in host/pod A, server in host/pod B; per repetition the three paths run in turn; receiver throughput. "+
			"Client and server share the 2 CPUs, so every path is CPU-bound. The MTU check sends ICMP echoes with DF set "+
			"from gingham pod A to pod B (from Go: iputils ping is not among the tools).", d.mtu, d.seconds),
		Command: fmt.Sprintf("benchsuite dataplane -reps %d -t %d -mtu %d (as root)", reps, d.seconds, d.mtu),
		Machine: machineLine(), Versions: map[string]string{"iperf3": iperfVersion(ctx)},
		Figures: []result.Figure{
			{Bench: "B9", Name: "pod→pod TCP, 1 stream, native routing", Unit: "Gbit/s", Gingham: gs,
				Refs: []result.Value{{Name: host.name, Stat: hs}, {Name: hand.name, Stat: result.StatOf(hand.gbps)}},
				Goal: "≥ 85 % of host→host", Met: ptr(result.Ratio(gs, hs) >= 0.85)},
			{Bench: "B9", Name: "largest pod→pod ping payload with DF set", Unit: "bytes", Gingham: result.StatOf([]float64{float64(pass)}),
				Refs: []result.Value{{Name: "underlay MTU − 28", Stat: result.StatOf([]float64{float64(d.mtu - 28)})}},
				Goal: "= MTU − 28, and MTU − 27 fails", Met: ptr(pass == d.mtu-28 && fail)},
		},
	}
	f.Notes = append(f.Notes,
		fmt.Sprintf("MTU check (gingham pods, pod eth0 MTU %d): a DF echo of %d bytes payload (`ping -M do -s %d`) %s, of %d bytes %s.", podMTU, d.mtu-28, d.mtu-28,
			map[bool]string{true: "passed", false: "**failed**"}[pass == d.mtu-28], d.mtu-27, map[bool]string{true: "failed as it must", false: "**passed** (it must not)"}[fail]))
	for _, p := range paths {
		f.Notes = append(f.Notes, fmt.Sprintf("%s: TCP retransmits per run median %.0f (%.0f–%.0f); sender CPU %.0f %% of one core (median).",
			p.name, result.StatOf(p.retr).Median, result.StatOf(p.retr).Min, result.StatOf(p.retr).Max, result.StatOf(p.cpuSnd).Median))
	}
	return f, nil
}

// mtuCheck pings pod B from pod A with DF set at MTU−28 (must pass) and
// MTU−27 (must fail). When MTU−28 fails it searches the largest payload
// that passes.
func (d *dataplane) mtuCheck(ctx context.Context) (largest int, tooBigFails bool, podMTU int, err error) {
	var seq uint16
	var pingErr error
	ping := func(size int) bool {
		seq++
		ok, err := pingDF(d.gPods[0], d.gIPs[1], size, seq, 2*time.Second)
		pingErr = errors.Join(pingErr, err)
		return ok
	}
	out, err := labnet.Run(ctx, d.gPods[0], "cat", "/sys/class/net/eth0/mtu")
	if err != nil {
		return 0, false, 0, err
	}
	podMTU, _ = strconv.Atoi(strings.TrimSpace(out))
	// The first packet may wait for ARP on the underlay: warm the path.
	for range 3 {
		if ping(56) {
			break
		}
	}
	if !ping(56) {
		return 0, false, podMTU, fmt.Errorf("B9: pod %s cannot reach pod %s: %w", d.gIPs[0], d.gIPs[1], pingErr)
	}
	largest = d.mtu - 28
	if !ping(largest) {
		lo, hi := 56, largest // lo passes, hi fails
		for hi-lo > 1 {
			if m := (lo + hi) / 2; ping(m) {
				lo = m
			} else {
				hi = m
			}
		}
		largest = lo
	}
	tooBigFails = !ping(d.mtu - 27)
	return largest, tooBigFails, podMTU, pingErr
}

// iperf runs one iperf3 client against a fresh one-shot server.
func (d *dataplane) iperf(ctx context.Context, p *path, rep int) (iperf, error) {
	log := filepath.Join(d.runDir, fmt.Sprintf("iperf3-s-%s-%d.log", p.server, rep))
	srv, err := labnet.StartDaemon("iperf3 -s", p.server, log, nil, "iperf3", "-s", "-1", "-B", p.serverIP.String(), "-p", iperfPort)
	if err != nil {
		return iperf{}, err
	}
	defer func() { _ = srv.Stop(2 * time.Second) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, _ := labnet.Run(ctx, p.server, "ss", "-Hltn", "sport = :"+iperfPort)
		if strings.TrimSpace(out) != "" {
			break
		}
		if !srv.Running() || time.Now().After(deadline) {
			b, _ := os.ReadFile(log)
			return iperf{}, fmt.Errorf("iperf3 server in %s did not listen: %s", p.server, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, err := labnet.Run(ctx, p.client, "iperf3", "-c", p.serverIP.String(), "-p", iperfPort, "-t", strconv.Itoa(d.seconds), "-O", "1", "-J")
	if err != nil {
		return iperf{}, fmt.Errorf("%w: %s", err, out)
	}
	var r struct {
		End struct {
			SumSent struct {
				Retransmits float64 `json:"retransmits"`
			} `json:"sum_sent"`
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
			CPU struct {
				HostTotal float64 `json:"host_total"`
			} `json:"cpu_utilization_percent"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return iperf{}, fmt.Errorf("parse iperf3 -J: %w", err)
	}
	if r.Error != "" || r.End.SumReceived.BitsPerSecond == 0 {
		return iperf{}, fmt.Errorf("iperf3: %q, no throughput", r.Error)
	}
	return iperf{gbps: r.End.SumReceived.BitsPerSecond / 1e9, retr: r.End.SumSent.Retransmits, cpuSend: r.End.CPU.HostTotal}, nil
}

func iperfVersion(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "iperf3", "--version").Output()
	if err != nil {
		return "unknown"
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}
