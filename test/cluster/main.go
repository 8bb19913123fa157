// Command cluster runs gingham on a real Kubernetes cluster on this machine
// (make cluster / make cluster-down): a control plane on the host, nodes
// with their own containerd, kubelet and kube-proxy in network and mount
// namespaces behind FRR ToRs, gingham installed from deploy/ with kubectl.
//
//	go run ./test/cluster up     build it, install gingham, check a pod matrix, leave it running
//	go run ./test/cluster conformance  the network conformance specs with gingham and with the bridge baseline, into docs/conformance.md
//	go run ./test/cluster check  print the nodes, ToR sessions and a pod matrix of the running cluster
//	go run ./test/cluster down   remove everything and show the host is as it was
//
// State lives in the run directory (default /var/tmp/gingham-cluster).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/gingham-net/gingham/internal/testenv"
	"github.com/gingham-net/gingham/test/kcluster"
)

type options struct {
	kcluster.Options
	imageTag    string
	podsPerNode int
	report      string
	renderOnly  bool
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: cluster up|check|conformance|down [flags]")
		os.Exit(2)
	}
	var o options
	fs := flag.NewFlagSet("cluster "+os.Args[1], flag.ExitOnError)
	bin := filepath.Join(testenv.Root(), "bin")
	fs.StringVar(&o.RunDir, "run-dir", "/var/tmp/gingham-cluster", "state, configs, containerd roots and logs")
	fs.StringVar(&o.Prefix, "prefix", "ghk-", "prefix of the cluster's network namespaces and cgroups")
	fs.IntVar(&o.Nodes, "nodes", 3, "nodes (1-4), over two racks")
	fs.StringVar(&o.Bin, "bin", bin, "directory of the binaries (make tools, make build)")
	fs.StringVar(&o.Images, "images", filepath.Join(bin, "images"), "directory of the image archives (make image)")
	fs.StringVar(&o.imageTag, "image-tag", "", "tag of the gingham image to install (make image's VERSION)")
	fs.IntVar(&o.podsPerNode, "pods-per-node", 2, "matrix pods per node")
	fs.BoolVar(&o.renderOnly, "render-only", false, "conformance: render the report from the run directory's results of an earlier run")
	fs.StringVar(&o.report, "report", filepath.Join(testenv.Root(), "docs", "conformance.md"), "conformance: the report to write")
	_ = fs.Parse(os.Args[2:])
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "up":
		err = up(ctx, o)
	case "down":
		err = down(context.Background(), o)
	case "conformance":
		err = conformance(ctx, o, o.report)
	case "check":
		var c *kcluster.Cluster
		if c, err = kcluster.Attach(o.Options); err == nil {
			err = check(ctx, o, c, &steps{total: 5, start: time.Now()})
		}
	default:
		err = fmt.Errorf("unknown command %q (up, check, conformance, down)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "cluster %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func baselinePath(o options) string { return filepath.Join(o.RunDir, "logs", "host-baseline.json") }

type steps struct {
	n, total int
	start    time.Time
}

func (s *steps) step(title string) {
	s.n++
	fmt.Printf("\n[%d/%d] %s  (t=%.1fs)\n", s.n, s.total, title, time.Since(s.start).Seconds())
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}

func up(ctx context.Context, o options) error {
	if o.imageTag == "" {
		return errors.New("-image-tag is required (make cluster passes make image's VERSION)")
	}
	c, err := kcluster.Attach(o.Options)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(baselinePath(o)), 0o755); err != nil {
		return err
	}
	base, _ := json.Marshal(kcluster.Snapshot(ctx, o.Prefix))
	if err := os.WriteFile(baselinePath(o), base, 0o644); err != nil {
		return err
	}
	s := &steps{total: 7, start: time.Now()}
	s.step("network, control plane and nodes (containerd, kubelet, kube-proxy)")
	if err := c.Up(ctx); err != nil {
		return err
	}
	out, _ := c.Kubectl(ctx, "get", "nodes", "-o", "wide")
	fmt.Println(indent(out))
	s.step("gingham from deploy/ (kubectl apply -k of an overlay: image tag, ipipMode Never)")
	if err := c.InstallGingham(ctx, o.imageTag, nil); err != nil {
		return err
	}
	out, _ = c.Kubectl(ctx, "-n", "gingham-system", "get", "pods", "-o", "wide")
	fmt.Println(indent(out))
	return check(ctx, o, c, s)
}

// check prints the nodes, the ToRs' sessions, a matrix Deployment and the
// pod-to-pod matrix of a running cluster; it fails unless the matrix is
// complete.
func check(ctx context.Context, o options, c *kcluster.Cluster, s *steps) error {
	s.step("nodes")
	out, _ := c.Kubectl(ctx, "get", "nodes", "-o", "wide")
	fmt.Println(indent(out))
	s.step("BGP sessions of the ToRs")
	for _, tor := range []string{"tor1", "tor2"} {
		out, _ := c.Lab.Vtysh(ctx, tor, "show bgp summary")
		fmt.Println(indent(tor + ":\n" + out))
	}
	s.step(fmt.Sprintf("a Deployment of %d agnhost pods spread over the nodes", o.podsPerNode*o.Nodes))
	pods, err := c.DeployMatrix(ctx, "matrix", o.podsPerNode)
	if err != nil {
		return err
	}
	out, _ = c.Kubectl(ctx, "-n", "matrix", "get", "pods", "-o", "wide")
	fmt.Println(indent(out))
	s.step("pod-to-pod matrix (kubectl exec: ping and TCP)")
	m := c.CheckMatrix(ctx, "matrix", pods)
	fmt.Println(indent(m.String()))
	s.step("routes of " + c.Spec.Nodes[0].Name)
	rt, _ := c.Lab.Run(ctx, c.Spec.Nodes[0].Name, "ip", "route")
	fmt.Println(indent(rt))
	fmt.Printf("\nThe cluster is running. kubectl: %s --kubeconfig %s get pods -A\n", filepath.Join(o.Bin, "kubectl"), c.AdminKubeconfig())
	fmt.Println("Logs:", filepath.Join(o.RunDir, "logs"), "  Remove it: make cluster-down")
	if m.Passed() != len(m.Probes) || len(m.Probes) == 0 {
		return fmt.Errorf("pod matrix %d/%d", m.Passed(), len(m.Probes))
	}
	return nil
}

func down(ctx context.Context, o options) error {
	var base kcluster.HostState
	b, berr := os.ReadFile(baselinePath(o))
	if berr == nil {
		berr = json.Unmarshal(b, &base)
	}
	before := kcluster.Snapshot(ctx, o.Prefix)
	fmt.Printf("before: %d namespaces, %d processes, %d cgroups of the cluster\n", len(before.Namespaces), len(before.Processes), len(before.Cgroups))
	err := kcluster.Down(ctx, o.Options)
	if berr == nil {
		restoreNetnsDir(ctx, base)
	}
	after := kcluster.Snapshot(ctx, o.Prefix)
	fmt.Printf("after:  %d namespaces, %d processes, %d cgroups of the cluster\n", len(after.Namespaces), len(after.Processes), len(after.Cgroups))
	if berr != nil {
		return errors.Join(err, fmt.Errorf("no baseline to compare with (%w)", berr))
	}
	if diff := base.Diff(after); len(diff) > 0 {
		return errors.Join(err, fmt.Errorf("the host differs from before the cluster:\n  %s", strings.Join(diff, "\n  ")))
	}
	if err != nil {
		return err
	}
	fmt.Println("cluster removed; the host's namespaces, links, routes, nftables tables, mounts, cgroups, watched sysctls and processes are as before `cluster up`")
	return nil
}

// restoreNetnsDir undoes iproute2's bind mount of /run/netns on itself
// (made by the first `ip netns add`) when the host had none before and no
// namespace is left in it; a plain unmount fails, leaving it, if another
// process has a namespace there.
func restoreNetnsDir(ctx context.Context, base kcluster.HostState) {
	const dir = "/run/netns"
	if slices.Contains(base.Mounts, dir) {
		return
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) > 0 {
		return
	}
	_ = syscall.Unmount(dir, 0)
}
