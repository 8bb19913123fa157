package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/gingham-net/gingham/internal/testenv"
	"github.com/gingham-net/gingham/test/labnet"
)

// progress prints numbered steps and their outcome.
type progress struct {
	n, total int
	start    time.Time
}

func (p *progress) step(title string) {
	p.n++
	p.start = time.Now()
	fmt.Printf("\n[%d/%d] %s\n", p.n, p.total, title)
}

func (p *progress) ok(format string, a ...any) {
	fmt.Printf("  ok   %s (%.1fs)\n", fmt.Sprintf(format, a...), time.Since(p.start).Seconds())
}

func (p *progress) fail(format string, a ...any) {
	fmt.Printf("  FAIL %s (%.1fs)\n", fmt.Sprintf(format, a...), time.Since(p.start).Seconds())
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}

// readBaseline reads the host state `up` recorded before building.
func readBaseline(o options) (hostState, bool) {
	var s hostState
	b, err := os.ReadFile(o.file("host-before.json"))
	if err != nil || json.Unmarshal(b, &s) != nil {
		return s, false
	}
	return s, true
}

// up builds and starts the lab, checks it step by step and leaves it
// running. It fails when the connectivity matrix is not complete.
func up(ctx context.Context, o options) error {
	if names, _ := labnet.ListNetNS(o.prefix); len(names) > 0 || readPID(o.file("serve.pid")) > 0 {
		fmt.Println("a previous lab is still there: removing it first")
		if err := down(ctx, o); err != nil {
			return err
		}
	}
	base := snapshot(ctx, o)
	spec := o.spec()
	if err := os.MkdirAll(o.runDir, 0o755); err != nil {
		return err
	}
	if b, err := json.Marshal(base); err == nil {
		_ = os.WriteFile(o.file("host-before.json"), b, 0o644)
	}
	p := &progress{total: 11}
	began := time.Now()

	p.step("network namespaces, racks, links")
	lab, err := labnet.Build(ctx, spec)
	if err != nil {
		return err
	}
	p.ok("%d namespaces with prefix %s", len(spec.Routers)+len(spec.Nodes), o.prefix)

	p.step("control plane (etcd, kube-apiserver, CRDs) and API proxies in the node namespaces")
	c, err := startServe(ctx, o)
	if err != nil {
		p.fail("%v", err)
		return err
	}
	if err := lab.RegisterNodes(ctx, c); err != nil {
		return err
	}
	if err := lab.ApplyObjects(ctx, c); err != nil {
		return err
	}
	p.ok("API server up; Nodes, default IPPool %s, BGPConfiguration (mesh off) and a BGPPeer per rack applied", spec.PoolCIDR)

	p.step("FRR on the ToRs, BIRD on the spine")
	if err := lab.StartRouters(ctx); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	err = lab.WaitRouterSessions(wctx)
	cancel()
	if err != nil {
		p.fail("%v", err)
		return err
	}
	p.ok("spine<->tor1 and spine<->tor2 Established")

	p.step("gingham-node on every node")
	agentsUp := startAgents(ctx, p, lab)

	p.step("pods through CNI (" + o.cniPlugin + " + " + o.ipam + ")")
	pods, podErr := createPods(ctx, c, lab, o)
	if podErr != nil {
		p.fail("%v", podErr)
	} else {
		p.ok("%d pods", len(pods))
	}
	fmt.Println()
	fmt.Print(indent(labnet.Diagram(spec, pods)) + "\n")

	p.step("connectivity matrix (every pod to every pod: P = ping, T = TCP)")
	complete := false
	if len(pods) > 1 {
		m, err := labnet.CheckMatrix(ctx, pods, func(done, total int) {
			if done%8 == 0 || done == total {
				fmt.Printf("    %d/%d pairs checked\n", done, total)
			}
		})
		if err != nil {
			p.fail("%v", err)
		} else {
			fmt.Println(indent(m.String()))
			complete = m.Complete()
			if complete {
				p.ok("100 %% of %d pairs", len(m.Probes))
			} else {
				p.fail("%d of %d pairs failed", len(m.Probes)-m.Passed(), len(m.Probes))
			}
		}
	} else {
		p.fail("not enough pods to check")
	}

	p.step("ginghamctl node status of each node")
	for _, n := range spec.Nodes {
		out, err := ginghamctl(ctx, o, "node", "status", "--node", n.Name)
		fmt.Printf("  %s:\n%s\n", n.Name, indent(out))
		if err != nil {
			fmt.Printf("    (ginghamctl: %v)\n", err)
		}
	}

	node := spec.Nodes[0].Name
	p.step("route table of " + node + " (ip route in its namespace)")
	out, _ := lab.Run(ctx, node, "ip", "route")
	fmt.Println(indent(out))

	p.step("BGP table of tor1 (vtysh -c 'show ip bgp')")
	out, err = lab.Vtysh(ctx, "tor1", "show ip bgp")
	if err != nil {
		p.fail("%v", err)
	}
	fmt.Println(indent(out))

	p.step("IPPool edit through ginghamctl: a second pool with pods on it, natOutgoing toggled")
	poolEdit(ctx, p, lab, c, o, pods)

	p.step("summary")
	fmt.Printf("  agents running: %d/%d; pods: %d; matrix complete: %v; up in %s\n",
		agentsUp, len(spec.Nodes), len(pods), complete, time.Since(began).Round(time.Second))
	explore(o, lab)
	if !complete {
		return errors.New("the connectivity matrix is not 100 % (the lab is left running to debug; make lab-down removes it)")
	}
	return nil
}

// startServe spawns `lab serve` detached and waits until it is ready.
func startServe(ctx context.Context, o options) (client.Client, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(o.file("serve.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(self, "serve", "-run-dir", o.runDir, "-prefix", o.prefix, fmt.Sprintf("-nodes-per-rack=%d", o.nodesPerRack))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "KUBEBUILDER_ASSETS="+filepath.Join(testenv.Root(), "bin"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start control plane process: %w", err)
	}
	if err := os.WriteFile(o.file("serve.pid"), []byte(fmt.Sprint(cmd.Process.Pid)), 0o644); err != nil {
		return nil, err
	}
	_ = cmd.Process.Release()
	deadline := time.Now().Add(90 * time.Second)
	for {
		b, err := os.ReadFile(o.file("serve.ready"))
		if err == nil && strings.HasPrefix(string(b), "ok") {
			break
		}
		if err == nil {
			return nil, fmt.Errorf("control plane: %s (log %s)", b, o.file("serve.log"))
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("control plane not ready after 90s (log %s)", o.file("serve.log"))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", o.hostKubeconfig())
	if err != nil {
		return nil, err
	}
	return client.New(cfg, client.Options{Scheme: testenv.Scheme()})
}

// startAgents starts gingham-node everywhere and reports which stay up
// and which BGP sessions to the ToRs come up.
func startAgents(ctx context.Context, p *progress, lab *labnet.Lab) int {
	if err := lab.StartAgents(""); err != nil {
		p.fail("%v", err)
		return 0
	}
	time.Sleep(3 * time.Second)
	up := 0
	for _, n := range lab.Spec.Nodes {
		d, _ := lab.Daemon(n.Name + "/gingham-node")
		if d != nil && d.Running() {
			up++
			continue
		}
		b, _ := os.ReadFile(lab.NodeDir(n.Name) + "/gingham-node.log")
		fmt.Printf("  %s: gingham-node exited; log tail:\n%s\n", n.Name, indent(tail(string(b), 8)))
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, r := range lab.Spec.Routers {
		if up == 0 {
			break // no agent: no session can come up
		}
		var nodes []netip.Addr
		for _, nb := range r.Neighbors {
			if nb.Node {
				nodes = append(nodes, nb.Addr)
			}
		}
		if len(nodes) == 0 {
			continue
		}
		if err := lab.WaitEstablished(wctx, r.Name, nodes...); err != nil {
			states, _ := lab.BGPStates(ctx, r.Name)
			fmt.Printf("  %s sessions to its nodes not all Established: %v\n", r.Name, states)
		}
	}
	if up == len(lab.Spec.Nodes) {
		p.ok("%d agents running (logs in %s/nodes/*/gingham-node.log)", up, lab.Spec.RunDir)
	} else {
		p.fail("%d of %d agents running", up, len(lab.Spec.Nodes))
	}
	return up
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// cniOptions turns the flags into CNI options.
func (o options) cniOptions(lab *labnet.Lab) labnet.CNIOptions {
	opts := labnet.CNIOptions{Plugin: o.cniPlugin}
	if o.ipam == "host-local" {
		opts.HostLocal = func(node string) netip.Prefix {
			for i, n := range lab.Spec.Nodes {
				if n.Name == node {
					return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 244, byte(i), 0}), 26)
				}
			}
			return netip.Prefix{}
		}
	}
	return opts
}

// createPods creates podsPerNode pods on every node.
func createPods(ctx context.Context, c client.Client, lab *labnet.Lab, o options) ([]*labnet.Pod, error) {
	var pods []*labnet.Pod
	var errs []error
	for _, n := range lab.Spec.Nodes {
		for i := 0; i < o.podsPerNode; i++ {
			name := fmt.Sprintf("%s-%c", n.Name, 'a'+i)
			pod, err := lab.CreatePod(ctx, c, labnet.PodRequest{Node: n.Name, Namespace: "default", Name: name, CNI: o.cniOptions(lab)})
			if err != nil {
				errs = append(errs, err)
				continue
			}
			fmt.Printf("    %-16s on %-12s %s\n", name, n.Name, pod.IP)
			pods = append(pods, pod)
		}
	}
	return pods, errors.Join(errs...)
}

// ginghamctl runs bin/ginghamctl on the host with the lab's kubeconfig.
func ginghamctl(ctx context.Context, o options, args ...string) (string, error) {
	bin := filepath.Join(labnet.BinDir(), "ginghamctl")
	out, err := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", o.hostKubeconfig()}, args...)...).CombinedOutput()
	return string(out), err
}

// explore prints how to look around the running lab.
func explore(o options, lab *labnet.Lab) {
	n := lab.Spec.Nodes[0].Name
	fmt.Printf(`
The lab is left running. To explore it:
  shell on a node:     ip netns exec %[1]s bash
  its routes:          ip -n %[1]s route
  a pod:               ip netns exec %[2]s busybox ping <pod IP>
  ginghamctl:          bin/ginghamctl --kubeconfig %[3]s get ippools -o wide
                       bin/ginghamctl --kubeconfig %[3]s node status --node %[4]s
  kubectl (if any):    KUBECONFIG=%[3]s kubectl get nodes,pods -o wide
  a ToR (FRR):         vtysh --vty_socket %[5]s -c 'show bgp summary'
  the spine (BIRD):    birdc -s %[6]s show protocols
  logs:                %[7]s (nodes/*/gingham-node.log, routers/*/*.log, serve.log)
  status / remove:     go run ./test/lab status   |   make lab-down
`, lab.NS(n), lab.NS("pod-"+n+"-a"), o.hostKubeconfig(), n, lab.RouterDir("tor1"), lab.BirdSocket("spine"), o.runDir)
}
