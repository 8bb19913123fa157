package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/gingham-net/gingham/internal/testenv"
	"github.com/gingham-net/gingham/test/labnet"
)

// needRoot ends a test that needs root and the lab's tools unless they are
// there; with GINGHAM_TEST_REQUIRE=1 (make test) it fails instead of
// skipping.
func needRoot(t *testing.T, tools ...string) {
	t.Helper()
	miss := func(format string, a ...any) {
		t.Helper()
		if testenv.Required() {
			t.Fatalf(format, a...)
		}
		t.Skipf(format, a...)
	}
	if os.Geteuid() != 0 {
		miss("lab tests need root (network namespaces)")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if _, serr := os.Stat(tool); serr != nil {
				miss("lab tests need %s (make tools): %v", tool, err)
			}
		}
	}
}

// newLab builds spec (after removing crashed runs' leftovers) and, on
// cleanup, tears it down and checks that nothing is left behind.
func newLab(t *testing.T, ctx context.Context, spec labnet.Spec) *labnet.Lab {
	t.Helper()
	if err := labnet.CleanupStale(ctx); err != nil {
		t.Logf("cleanup of stale runs: %v", err)
	}
	lab, err := labnet.Build(ctx, spec)
	if err != nil {
		t.Fatalf("build lab: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, spec.RunDir)
		}
		daemons := lab.Daemons()
		if err := lab.Close(); err != nil {
			t.Errorf("close lab: %v", err)
		}
		for _, d := range daemons {
			if labnet.Alive(d.PID) {
				t.Errorf("%s (pid %d) still running after close", d.Name, d.PID)
			}
		}
		if left, _ := labnet.ListNetNS(spec.Prefix); len(left) > 0 {
			t.Errorf("namespaces left after close: %v", left)
		}
	})
	return lab
}

// dumpLogs prints the tail of every log of a run.
func dumpLogs(t *testing.T, dir string) {
	_ = filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || !strings.HasSuffix(path, ".log") {
			return nil
		}
		b, _ := os.ReadFile(path)
		if len(b) > 3000 {
			b = b[len(b)-3000:]
		}
		t.Logf("--- %s\n%s", path, b)
		return nil
	})
}

// runDir is a fresh run directory under /tmp that FRR (user frr) can
// reach (t.TempDir's parent is private), removed after the test.
func runDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "gingham-lab-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// controlPlane starts etcd + kube-apiserver for one test.
func controlPlane(t *testing.T) *testenv.Env {
	t.Helper()
	env, reason, err := testenv.Start()
	if err != nil {
		t.Fatalf("start control plane: %v", err)
	}
	testenv.Need(t, env)
	if env == nil {
		t.Skip(reason)
	}
	t.Cleanup(env.Stop)
	return env
}

// TestLabHarnessUnderlay builds the lab's ToR topology and checks the
// parts that do not depend on gingham: FRR ToRs and the BIRD spine reach
// Established, exchange the rack subnets, and nodes in different racks
// reach each other through them.
func TestLabHarnessUnderlay(t *testing.T) {
	needRoot(t, "bird", "vtysh", "/usr/lib/frr/bgpd", "busybox")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	spec := labnet.ToRSpec(labnet.TestPrefix(), runDir(t), 2)
	lab := newLab(t, ctx, spec)
	if err := lab.StartRouters(ctx); err != nil {
		t.Fatal(err)
	}
	if err := lab.WaitRouterSessions(ctx); err != nil {
		t.Fatal(err)
	}
	// The spine learns both racks and installs them; each ToR learns the
	// other rack from the spine.
	rack2 := netip.MustParsePrefix("10.0.2.0/24")
	waitFor(t, ctx, "tor1 learns rack2 via the spine", func() (bool, string) {
		out, _ := lab.Run(ctx, "tor1", "ip", "route", "show", rack2.String())
		return strings.Contains(out, "proto bgp"), out
	})
	waitFor(t, ctx, "spine installs rack1 from tor1", func() (bool, string) {
		out, _ := lab.Run(ctx, "spine", "ip", "route", "show", "10.0.1.0/24")
		return strings.Contains(out, "proto bird"), out
	})
	for _, pair := range [][2]string{{"rack1-node1", "rack1-node2"}, {"rack1-node1", "rack2-node2"}, {"rack2-node1", "rack1-node2"}} {
		dst, _ := spec.Node(pair[1])
		if err := labnet.Ping(ctx, lab.NS(pair[0]), dst.Addr.Addr(), 5); err != nil {
			t.Errorf("underlay %s -> %s: %v", pair[0], pair[1], err)
		}
	}
	out, err := lab.Vtysh(ctx, "tor1", "show ip bgp")
	if err != nil || !strings.Contains(out, "10.0.2.0/24") {
		t.Errorf("tor1 BGP table lacks rack2 (err %v):\n%s", err, out)
	}
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() (bool, string)) {
	t.Helper()
	last := ""
	for {
		ok, info := cond()
		if ok {
			return
		}
		last = info
		select {
		case <-ctx.Done():
			t.Fatalf("%s: timed out; last: %s", what, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Environment of the helper process TestLabHelperAPIProbe.
const (
	helperEnv     = "GINGHAM_LAB_HELPER"
	helperKubecfg = "GINGHAM_LAB_HELPER_KUBECONFIG"
)

// TestLabHelperAPIProbe is not a test: TestLabHarnessAPIProxy runs the
// test binary inside a node namespace with this test selected, to prove a
// process there reaches the API server through the namespace's proxy.
func TestLabHelperAPIProbe(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("helper process for TestLabHarnessAPIProxy")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv(helperKubecfg))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	var nodes corev1.NodeList
	if err := c.List(context.Background(), &nodes); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		fmt.Printf("node=%s\n", n.Name)
	}
}

// TestLabHarnessAPIProxy checks that a process inside every node
// namespace reaches the API server (on host loopback) with the lab's node
// kubeconfig, through the per-namespace proxy on 127.0.0.1:6443.
func TestLabHarnessAPIProxy(t *testing.T) {
	needRoot(t)
	env := controlPlane(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	spec := labnet.MeshSpec(labnet.TestPrefix(), runDir(t), 2)
	lab := newLab(t, ctx, spec)
	if err := lab.StartAPIProxies(env.Config, env.Kubeconfig); err != nil {
		t.Fatal(err)
	}
	if err := lab.RegisterNodes(ctx, env.Client); err != nil {
		t.Fatal(err)
	}
	for _, n := range spec.Nodes {
		cmd := labnet.Command(ctx, lab.NS(n.Name), os.Args[0], "-test.run=^TestLabHelperAPIProbe$", "-test.v")
		cmd.Env = append(os.Environ(), helperEnv+"=1", helperKubecfg+"="+lab.NodeKubeconfig())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("API from %s: %v\n%s", n.Name, err, out)
		}
		for _, want := range spec.Nodes {
			if !strings.Contains(string(out), "node="+want.Name+"\n") {
				t.Errorf("API from %s: node %s not listed:\n%s", n.Name, want.Name, out)
			}
		}
	}
	// Without the proxy the namespace has no API server.
	if _, err := labnet.Run(ctx, lab.NS("switch"), "busybox", "nc", "-w", "1", "127.0.0.1", "6443"); err == nil {
		t.Errorf("API reachable from a namespace without a proxy")
	}
}

// TestLabHarnessPodsThroughCNI creates pods the way a container runtime
// does (Pod object, netns, CNI ADD inside the node namespace), with the
// reference ptp + host-local plugins standing in for gingham, routes the
// nodes' pod subnets statically, and checks the full connectivity matrix,
// the Pod objects and CNI DEL. It proves the lab's pod and matrix
// machinery independently of the agent.
func TestLabHarnessPodsThroughCNI(t *testing.T) {
	needRoot(t, "/usr/lib/cni/ptp", "/usr/lib/cni/host-local", "busybox")
	env := controlPlane(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	spec := labnet.MeshSpec(labnet.TestPrefix(), runDir(t), 3)
	lab := newLab(t, ctx, spec)
	if err := lab.StartAPIProxies(env.Config, env.Kubeconfig); err != nil {
		t.Fatal(err)
	}
	if err := lab.RegisterNodes(ctx, env.Client); err != nil {
		t.Fatal(err)
	}
	subnet := func(node string) netip.Prefix {
		for i, n := range spec.Nodes {
			if n.Name == node {
				return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 250, byte(i + 1), 0}), 24)
			}
		}
		return netip.Prefix{}
	}
	opts := labnet.CNIOptions{Plugin: "ptp", HostLocal: subnet}
	// Static routes stand in for BGP: every node routes the others' subnets.
	for _, n := range spec.Nodes {
		for _, o := range spec.Nodes {
			if o.Name != n.Name {
				if _, err := lab.Run(ctx, n.Name, "ip", "route", "add", subnet(o.Name).String(), "via", o.Addr.Addr().String()); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	var pods []*labnet.Pod
	for _, n := range spec.Nodes {
		for _, suffix := range []string{"a", "b"} {
			p, err := lab.CreatePod(ctx, env.Client, labnet.PodRequest{Node: n.Name, Namespace: "default", Name: n.Name + "-" + suffix, CNI: opts})
			if err != nil {
				t.Fatal(err)
			}
			if !subnet(n.Name).Contains(p.IP) {
				t.Errorf("pod %s got %s outside its node's subnet %s", p, p.IP, subnet(n.Name))
			}
			var obj corev1.Pod
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: p.Name}, &obj); err != nil {
				t.Fatal(err)
			}
			if obj.Spec.NodeName != n.Name || obj.Status.PodIP != p.IP.String() {
				t.Errorf("pod object %s: nodeName %q podIP %q, want %q %q", p, obj.Spec.NodeName, obj.Status.PodIP, n.Name, p.IP)
			}
			pods = append(pods, p)
		}
	}
	m, err := labnet.CheckMatrix(ctx, pods, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("connectivity matrix:\n%s", m)
	if !m.Complete() {
		t.Errorf("matrix incomplete:\n%s", strings.Join(m.Failures(), "\n"))
	}
	// A broken path must show up in the matrix, or it proves nothing.
	if _, err := lab.Run(ctx, spec.Nodes[0].Name, "ip", "route", "del", subnet(spec.Nodes[1].Name).String()); err != nil {
		t.Fatal(err)
	}
	m, err = labnet.CheckMatrix(ctx, pods[:4], nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.Passed(), 4; got != want { // only the pairs within a node
		t.Errorf("after removing a route: %d pairs OK, want %d:\n%s", got, want, m)
	}
	for _, p := range pods {
		if err := lab.DeletePod(ctx, env.Client, p, opts); err != nil {
			t.Error(err)
		}
	}
	if left, _ := labnet.ListNetNS(spec.Prefix + "pod-"); len(left) > 0 {
		t.Errorf("pod namespaces left after CNI DEL: %v", left)
	}
}

// TestLabHarnessMeshAndRR builds the flat L2 topologies of issue 5's tests:
// nodes reach each other over the switch, and the BIRD route reflector
// starts with one client session per node (waiting for the agents).
func TestLabHarnessMeshAndRR(t *testing.T) {
	needRoot(t, "bird", "busybox")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	mesh := labnet.MeshSpec(labnet.TestPrefix()+"m-", runDir(t), 3)
	ml := newLab(t, ctx, mesh)
	if err := labnet.Ping(ctx, ml.NS("node1"), mesh.Nodes[2].Addr.Addr(), 3); err != nil {
		t.Errorf("mesh underlay: %v", err)
	}
	rr := labnet.RRSpec(labnet.TestPrefix()+"r-", runDir(t), 3)
	rl := newLab(t, ctx, rr)
	if err := rl.StartRouters(ctx); err != nil {
		t.Fatal(err)
	}
	if err := labnet.Ping(ctx, rl.NS("node3"), netip.MustParseAddr("10.0.0.254"), 3); err != nil {
		t.Errorf("node to route reflector: %v", err)
	}
	waitFor(t, ctx, "BIRD reflector lists a session per node", func() (bool, string) {
		states, err := rl.BGPStates(ctx, "rr")
		return err == nil && len(states) == len(rr.Nodes), fmt.Sprint(states, err)
	})
	if out, err := rl.Birdc(ctx, "rr", "show protocols all p_node1"); err != nil || !strings.Contains(out, "Neighbor address: 10.0.0.11") {
		t.Errorf("reflector session to node1 (err %v):\n%s", err, out)
	}
}

// TestLabMatrix runs the lab's topology (make lab) with gingham-node on
// every node and pods attached by the gingham CNI plugin, and asserts the
// full connectivity matrix: the product's main job.
func TestLabMatrix(t *testing.T) {
	needRoot(t, "bird", "vtysh", "/usr/lib/frr/bgpd", "busybox")
	for _, b := range []string{"gingham-node", "gingham", "gingham-ipam"} {
		if _, err := os.Stat(filepath.Join(labnet.BinDir(), b)); err != nil {
			t.Fatalf("%s not built (make build): %v", b, err)
		}
	}
	env := controlPlane(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	spec := labnet.ToRSpec(labnet.TestPrefix(), runDir(t), 2)
	lab := newLab(t, ctx, spec)
	if err := lab.StartAPIProxies(env.Config, env.Kubeconfig); err != nil {
		t.Fatal(err)
	}
	if err := lab.RegisterNodes(ctx, env.Client); err != nil {
		t.Fatal(err)
	}
	if err := lab.ApplyObjects(ctx, env.Client); err != nil {
		t.Fatal(err)
	}
	if err := lab.StartRouters(ctx); err != nil {
		t.Fatal(err)
	}
	if err := lab.WaitRouterSessions(ctx); err != nil {
		t.Fatal(err)
	}
	if err := lab.StartAgents(""); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	defer wcancel()
	for _, r := range spec.Routers {
		var nodes []netip.Addr
		for _, n := range r.Neighbors {
			if n.Node {
				nodes = append(nodes, n.Addr)
			}
		}
		if err := lab.WaitEstablished(wctx, r.Name, nodes...); err != nil {
			t.Fatalf("sessions between %s and its nodes: %v", r.Name, err)
		}
	}
	var pods []*labnet.Pod
	for _, n := range spec.Nodes {
		for _, suffix := range []string{"a", "b"} {
			p, err := lab.CreatePod(ctx, env.Client, labnet.PodRequest{Node: n.Name, Namespace: "default", Name: n.Name + "-" + suffix})
			if err != nil {
				t.Fatal(err)
			}
			if !spec.PoolCIDR.Contains(p.IP) {
				t.Errorf("pod %s got %s outside the pool %s", p, p.IP, spec.PoolCIDR)
			}
			pods = append(pods, p)
		}
	}
	// Routes converge after the pods' blocks are advertised.
	var m *labnet.Matrix
	for attempt := 0; attempt < 10; attempt++ {
		var err error
		if m, err = labnet.CheckMatrix(ctx, pods, nil); err != nil {
			t.Fatal(err)
		}
		if m.Complete() {
			break
		}
		time.Sleep(2 * time.Second)
	}
	t.Logf("connectivity matrix:\n%s", m)
	if !m.Complete() {
		t.Fatalf("connectivity matrix incomplete:\n%s", strings.Join(m.Failures(), "\n"))
	}
	// Issue 5's ToR acceptance: the ToR's BGP table has every node's block
	// (its own rack's from the nodes, the other's via the spine) and no /32
	// of a pod inside an affine block; its kernel forwards by those /26s.
	table, err := lab.Vtysh(ctx, "tor1", "show ip bgp")
	if err != nil {
		t.Fatal(err)
	}
	fib, _ := lab.Run(ctx, "tor1", "ip", "route", "show", "proto", "bgp")
	for _, p := range pods {
		block := netip.PrefixFrom(p.IP, 26).Masked().String()
		if !strings.Contains(table, block) {
			t.Errorf("tor1's BGP table lacks %s (block of %s):\n%s", block, p, table)
		}
		if strings.Contains(table, p.IP.String()+"/32") {
			t.Errorf("tor1's BGP table has the /32 of %s inside its block:\n%s", p, table)
		}
		if !strings.Contains(fib, block) {
			t.Errorf("tor1's kernel has no route for %s:\n%s", block, fib)
		}
	}
	t.Logf("tor1 BGP table:\n%s", table)
}
