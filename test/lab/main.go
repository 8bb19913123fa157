// Command lab runs gingham's lab (make lab / make lab-down): a two-rack
// cluster in network namespaces on this machine, left running to explore.
//
//	go run ./test/lab up      build it, start everything, check it, print how to explore
//	go run ./test/lab status  what is running
//	go run ./test/lab down    remove everything and show that nothing is left
//
// `up` starts the control plane and the per-node API proxies in a detached
// background process (`lab serve`, in its own session) so they outlive it;
// routers and agents run in the lab's namespaces. State lives in the run
// directory (default /run/gingham-lab).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gingham-net/gingham/internal/testenv"
	"github.com/gingham-net/gingham/test/labnet"
)

// options are the flags shared by the subcommands.
type options struct {
	runDir       string
	prefix       string
	nodesPerRack int
	podsPerNode  int
	cniPlugin    string
	ipam         string
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: lab up|down|status [flags]")
		os.Exit(2)
	}
	var o options
	fs := flag.NewFlagSet("lab "+os.Args[1], flag.ExitOnError)
	fs.StringVar(&o.runDir, "run-dir", "/run/gingham-lab", "state, configs, sockets and logs of the lab")
	fs.StringVar(&o.prefix, "prefix", "ghl-", "prefix of the lab's network namespaces")
	fs.IntVar(&o.nodesPerRack, "nodes-per-rack", 2, "nodes in each of the two racks")
	fs.IntVar(&o.podsPerNode, "pods-per-node", 2, "pods created on each node")
	fs.StringVar(&o.cniPlugin, "cni", "gingham", "main CNI plugin (e.g. ptp to exercise the harness)")
	fs.StringVar(&o.ipam, "ipam", "gingham-ipam", "IPAM plugin: gingham-ipam or host-local")
	_ = fs.Parse(os.Args[2:])
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "up":
		err = up(ctx, o)
	case "down":
		err = down(context.Background(), o)
	case "status":
		err = status(ctx, o)
	case "serve":
		err = serve(ctx, o)
	default:
		err = fmt.Errorf("unknown command %q (up, down, status)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "lab %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func (o options) spec() labnet.Spec { return labnet.ToRSpec(o.prefix, o.runDir, o.nodesPerRack) }

func (o options) file(name string) string { return filepath.Join(o.runDir, name) }

// hostKubeconfig is the kubeconfig for the host (ginghamctl, kubectl).
func (o options) hostKubeconfig() string { return o.file("kubeconfig") }

// serve runs the control plane and the API proxies until SIGTERM. It
// reports readiness (or its start error) in serve.ready.
func serve(ctx context.Context, o options) error {
	ready := o.file("serve.ready")
	fail := func(err error) error {
		_ = os.WriteFile(ready, []byte("error: "+err.Error()), 0o644)
		return err
	}
	env, reason, err := testenv.Start()
	if err != nil {
		return fail(fmt.Errorf("start control plane: %w", err))
	}
	if env == nil {
		return fail(fmt.Errorf("start control plane: %s", reason))
	}
	defer env.Stop()
	b, err := os.ReadFile(env.Kubeconfig)
	if err != nil {
		return fail(fmt.Errorf("copy kubeconfig: %w", err))
	}
	if err := os.WriteFile(o.hostKubeconfig(), b, 0o600); err != nil {
		return fail(fmt.Errorf("copy kubeconfig: %w", err))
	}
	lab := labnet.Attach(o.spec())
	if err := lab.StartAPIProxies(env.Config, o.hostKubeconfig()); err != nil {
		return fail(err)
	}
	defer func() { _ = lab.CloseProxies() }()
	if err := os.WriteFile(ready, []byte("ok "+env.Config.Host), 0o644); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// readPID reads a pid file; 0 when absent.
func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// hostState is what `down` compares before and after: the lab's
// namespaces, processes, host routes and host nftables tables.
type hostState struct {
	Namespaces []string
	Processes  []string
	Routes     []string
	NFTables   []string
}

func snapshot(ctx context.Context, o options) hostState {
	var s hostState
	s.Namespaces, _ = labnet.ListNetNS(o.prefix)
	for _, ns := range s.Namespaces {
		for _, pid := range labnet.NetNSPids(ctx, ns) {
			s.Processes = append(s.Processes, fmt.Sprintf("%d (%s in %s)", pid, labnet.Comm(pid), ns))
		}
	}
	if pid := readPID(o.file("serve.pid")); pid > 0 && labnet.Alive(pid) {
		s.Processes = append(s.Processes, fmt.Sprintf("%d (%s, control plane)", pid, labnet.Comm(pid)))
		for _, m := range labnet.Descendants(pid) {
			s.Processes = append(s.Processes, fmt.Sprintf("%d (%s, control plane)", m, labnet.Comm(m)))
		}
	}
	out, _ := labnet.Run(ctx, "", "ip", "-4", "route", "show", "table", "all")
	s.Routes = labnet.Lines(out)
	out, _ = labnet.Run(ctx, "", "nft", "list", "tables")
	s.NFTables = labnet.Lines(out)
	return s
}

// down removes the lab: the control plane process group, every process
// in the lab's namespaces, the namespaces (with their links, routes and
// nftables tables) and the run directory; then shows what is left.
func down(ctx context.Context, o options) error {
	before := snapshot(ctx, o)
	fmt.Printf("before: %d lab namespaces, %d lab processes, %d host routes, %d host nftables tables\n",
		len(before.Namespaces), len(before.Processes), len(before.Routes), len(before.NFTables))
	for _, p := range before.Processes {
		fmt.Println("  process", p)
	}
	if pid := readPID(o.file("serve.pid")); pid > 0 {
		labnet.StopPID(pid, 20*time.Second)
	}
	err := labnet.Teardown(ctx, o.prefix)
	if rerr := os.RemoveAll(o.runDir); rerr != nil {
		err = errors.Join(err, rerr)
	}
	after := snapshot(ctx, o)
	fmt.Printf("after:  %d lab namespaces, %d lab processes, %d host routes, %d host nftables tables\n",
		len(after.Namespaces), len(after.Processes), len(after.Routes), len(after.NFTables))
	var left []string
	left = append(left, after.Namespaces...)
	left = append(left, after.Processes...)
	if base, ok := readBaseline(o); ok {
		left = append(left, added(base.Routes, after.Routes, "host route")...)
		left = append(left, added(base.NFTables, after.NFTables, "nftables table")...)
	}
	if _, serr := os.Stat(o.runDir); serr == nil {
		left = append(left, "run directory "+o.runDir)
	}
	if len(left) > 0 {
		return errors.Join(err, fmt.Errorf("left behind: %s", strings.Join(left, "; ")))
	}
	if err != nil {
		return err
	}
	fmt.Println("lab removed: no namespace, process, run directory, host route or nftables table of the lab is left")
	return nil
}

// added lists entries of now that were not in base.
func added(base, now []string, what string) []string {
	seen := map[string]bool{}
	for _, b := range base {
		seen[b] = true
	}
	var out []string
	for _, n := range now {
		if !seen[n] {
			out = append(out, what+" "+n)
		}
	}
	return out
}

// status prints what of the lab is running.
func status(ctx context.Context, o options) error {
	s := snapshot(ctx, o)
	if len(s.Namespaces) == 0 {
		fmt.Println("no lab is running (make lab starts one)")
		return nil
	}
	fmt.Printf("namespaces: %s\n", strings.Join(s.Namespaces, " "))
	fmt.Println("processes:")
	for _, p := range s.Processes {
		fmt.Println("  " + p)
	}
	lab := labnet.Attach(o.spec())
	for _, r := range lab.Spec.Routers {
		states, err := lab.BGPStates(ctx, r.Name)
		if err != nil {
			fmt.Printf("%s: %v\n", r.Name, err)
			continue
		}
		for _, n := range r.Neighbors {
			fmt.Printf("%-6s -> %-12s %-10s %s\n", r.Name, n.Name, n.Addr, states[n.Addr])
		}
	}
	return nil
}
