package kcluster

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gingham-net/gingham/test/labnet"
)

// opsEnv is the agent configuration TestCluster installs gingham with:
// the shipped DaemonSet's, with the IPAM GC grace and the BGP graceful
// restart time shortened so a deleted node's release and withdrawal fit
// in a test.
var opsEnv = map[string]string{"GINGHAM_IPAM_GC_GRACE": "20s", "GINGHAM_GRACEFUL_RESTART_TIME": "30s"}

// routers are the namespaces whose kernels hold pod routes: the nodes and
// the ToRs.
func (c *Cluster) routers() []string {
	names := append([]string{"tor1", "tor2", "spine"}, c.NodeNames()...)
	return names
}

// monitorAll starts a route monitor in every node and router.
func monitorAll(t *testing.T, ctx context.Context, c *Cluster) []*RouteMonitor {
	t.Helper()
	var ms []*RouteMonitor
	for _, n := range c.routers() {
		m, err := c.MonitorRoutes(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	return ms
}

// podDeletions stops the monitors and returns the deletions of routes
// that had to stay: blocks (blackholes, learned block routes) and the /32
// of every pod that was Running before and after (stable). Pods that come
// and go meanwhile (an e2e namespace being torn down) may lose theirs.
func podDeletions(c *Cluster, ms []*RouteMonitor, stable map[netip.Addr]bool) []string {
	var del []string
	for _, m := range ms {
		for _, d := range m.Stop(c.Spec.PoolCIDR) {
			if d.Dst.Bits() != 32 || stable[d.Dst.Addr()] {
				del = append(del, d.String())
			}
		}
	}
	return del
}

// stablePods is the intersection of two PodIPs sets.
func stablePods(before, after map[netip.Addr]bool) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	for a := range before {
		if after[a] {
			out[a] = true
		}
	}
	return out
}

// stableRoutes keeps the routes a restart must not change: all but the
// /32s of pods that came or went.
func stableRoutes(routes []string, stable map[netip.Addr]bool) []string {
	var out []string
	for _, r := range routes {
		f := strings.Fields(r)
		if len(f) > 0 {
			if a, err := netip.ParseAddr(f[0]); err == nil && !stable[a] {
				continue
			}
		}
		out = append(out, r)
	}
	return out
}

// livePods reads PodIPs or fails the test.
func livePods(t *testing.T, ctx context.Context, c *Cluster) map[netip.Addr]bool {
	t.Helper()
	ips, err := c.PodIPs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ips
}

// waitAgents waits for the DaemonSet to be rolled out and Ready on every
// node.
func waitAgents(t *testing.T, ctx context.Context, c *Cluster) {
	t.Helper()
	if _, err := c.Kubectl(ctx, "-n", "gingham-system", "rollout", "status", "daemonset/gingham-node", "--timeout=5m"); err != nil {
		t.Fatal(err)
	}
}

// testDeleteAgentPod deletes one node's gingham pod: the kubelet starts a
// new one, which adopts the routes: no pod route is deleted anywhere and
// the node's route table is the same.
func testDeleteAgentPod(t *testing.T, ctx context.Context, c *Cluster, node string) {
	podsBefore := livePods(t, ctx, c)
	before, err := c.Routes(ctx, node, "96")
	if err != nil {
		t.Fatal(err)
	}
	pod, err := c.GinghamPod(ctx, node)
	if err != nil {
		t.Fatal(err)
	}
	ms := monitorAll(t, ctx, c)
	if _, err := c.Kubectl(ctx, "-n", "gingham-system", "delete", "pod", pod, "--wait=true"); err != nil {
		t.Fatal(err)
	}
	waitAgents(t, ctx, c)
	after, err := c.Routes(ctx, node, "96")
	if err != nil {
		t.Fatal(err)
	}
	stable := stablePods(podsBefore, livePods(t, ctx, c))
	if del := podDeletions(c, ms, stable); len(del) > 0 {
		t.Errorf("pod routes deleted while the agent was replaced:\n  %s", strings.Join(del, "\n  "))
	}
	if before, after := stableRoutes(before, stable), stableRoutes(after, stable); !slices.Equal(before, after) {
		t.Errorf("%s's routes changed across the agent's restart:\nbefore %q\nafter  %q", node, before, after)
	}
	t.Logf("%s: gingham pod %s replaced; %d routes kept, none deleted on %d nodes and routers", node, pod, len(after), len(c.routers()))
}

// testRolloutRestart restarts every agent (kubectl rollout restart) while
// pods on different nodes and racks ping each other: no echo is lost and
// no pod route is deleted on any node or router.
func testRolloutRestart(t *testing.T, ctx context.Context, c *Cluster, pods []Pod) {
	const window = 180 // seconds of ping; the rollout must end inside it
	var flows [][2]Pod
	for _, a := range pods {
		for _, b := range pods {
			if a.Node != b.Node && !slices.ContainsFunc(flows, func(f [2]Pod) bool { return f[0].Node == a.Node && f[1].Node == b.Node }) {
				flows = append(flows, [2]Pod{a, b})
			}
		}
	}
	podsBefore := livePods(t, ctx, c)
	ms := monitorAll(t, ctx, c)
	results := make([]PingResult, len(flows))
	errs := make([]error, len(flows))
	var wg sync.WaitGroup
	for i, f := range flows {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = c.Ping(ctx, "matrix", f[0].Name, f[1].IP, window)
		}()
	}
	start := time.Now()
	if _, err := c.Kubectl(ctx, "-n", "gingham-system", "rollout", "restart", "daemonset/gingham-node"); err != nil {
		t.Fatal(err)
	}
	waitAgents(t, ctx, c)
	took := time.Since(start)
	wg.Wait()
	if took > (window-10)*time.Second {
		t.Errorf("the rollout took %s, too close to the %ds ping window to tell", took.Round(time.Second), window)
	}
	for i, f := range flows {
		switch {
		case errs[i] != nil:
			t.Error(errs[i])
		case results[i].Sent < 5*(window-5) || results[i].Lost() > 0:
			t.Errorf("%s (%s) -> %s (%s): %d sent, %d lost", f[0].Name, f[0].Node, f[1].Name, f[1].Node, results[i].Sent, results[i].Lost())
		default:
			t.Logf("%s -> %s: %d echoes, 0 lost", f[0].Node, f[1].Node, results[i].Sent)
		}
	}
	if del := podDeletions(c, ms, stablePods(podsBefore, livePods(t, ctx, c))); len(del) > 0 {
		t.Errorf("pod routes deleted during the rollout:\n  %s", strings.Join(del, "\n  "))
	}
	t.Logf("rollout restart of %d agents took %s", len(c.Spec.Nodes), took.Round(time.Second))
}

// testBurst creates 100 pods at once: all Running on every node with
// unique addresses from the pool, and IPAM consistent (ginghamctl ipam
// check) with them and after they are gone.
func testBurst(t *testing.T, ctx context.Context, c *Cluster) {
	const n = 100
	start := time.Now()
	if _, err := c.KubectlStdin(ctx, "apiVersion: v1\nkind: Namespace\nmetadata: {name: burst}\n---\n"+BurstDeployment("burst", n), "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Kubectl(ctx, "-n", "burst", "rollout", "status", "deployment/burst", "--timeout=5m"); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	pods, err := c.Pods(ctx, "burst", "app=burst")
	if err != nil {
		t.Fatal(err)
	}
	seen, nodes := map[string]string{}, map[string]int{}
	for _, p := range pods {
		if other, dup := seen[p.IP]; dup {
			t.Errorf("address %s given to %s and %s", p.IP, other, p.Name)
		}
		seen[p.IP] = p.Name
		nodes[p.Node]++
		if a, err := netip.ParseAddr(p.IP); err != nil || !c.Spec.PoolCIDR.Contains(a) {
			t.Errorf("%s: address %q outside the pool %s", p.Name, p.IP, c.Spec.PoolCIDR)
		}
	}
	if len(pods) != n || len(nodes) != len(c.Spec.Nodes) {
		t.Fatalf("want %d Running pods on %d nodes, got %d on %v", n, len(c.Spec.Nodes), len(pods), nodes)
	}
	t.Logf("%d pods Running in %s, per node %v", n, took.Round(100*time.Millisecond), nodes)
	if out, err := c.Ginghamctl(ctx, "ipam", "check"); err != nil {
		t.Errorf("ipam check with %d pods: %v\n%s", n, err, out)
	}
	if _, err := c.Kubectl(ctx, "delete", "namespace", "burst", "--wait=true", "--timeout=5m"); err != nil {
		t.Fatal(err)
	}
	// The API forgets a pod when its containers stop; the kubelet tears
	// its sandbox down (CNI DEL, releasing the address) right after.
	var out string
	if err := c.WaitFor(ctx, 2*time.Minute, "every burst address released", func(ctx context.Context) (bool, error) {
		var err error
		out, err = c.Ginghamctl(ctx, "ipam", "check")
		return err == nil, nil
	}); err != nil {
		t.Errorf("ipam check after deleting the pods: %v\n%s", err, out)
	}
}

// testDrainDelete drains a node, shuts it down and deletes its Node: the
// IPAM GC releases its blocks and affinities, and no node or router keeps
// a route to its blocks.
func testDrainDelete(t *testing.T, ctx context.Context, c *Cluster, node string) {
	blocks, err := c.Kubectl(ctx, "get", "blockaffinities.gingham.dev", "-o",
		`jsonpath={range .items[?(@.spec.node=="`+node+`")]}{.spec.cidr}{"\n"}{end}`)
	if err != nil {
		t.Fatal(err)
	}
	cidrs := labnet.Lines(blocks)
	if len(cidrs) == 0 {
		t.Fatalf("%s has no block affinity to check", node)
	}
	if _, err := c.Kubectl(ctx, "drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--force", "--timeout=3m"); err != nil {
		t.Fatal(err)
	}
	if err := c.StopNode(ctx, node); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Kubectl(ctx, "delete", "node", node); err != nil {
		t.Fatal(err)
	}
	err = c.WaitFor(ctx, 4*time.Minute, node+"'s blocks released and withdrawn everywhere", func(ctx context.Context) (bool, error) {
		out, err := c.Kubectl(ctx, "get", "blockaffinities.gingham.dev,ipamblocks.gingham.dev", "-o", "yaml")
		if err != nil || strings.Contains(out, node) {
			return false, nil
		}
		for _, r := range c.routers() {
			if r == node {
				continue
			}
			rt, err := c.Lab.Run(ctx, r, "ip", "-4", "route", "show")
			if err != nil {
				return false, err
			}
			for _, cidr := range cidrs {
				if strings.Contains(rt, cidr+" ") {
					return false, nil
				}
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("%v (blocks %v)", err, cidrs)
	}
	if out, err := c.Ginghamctl(ctx, "ipam", "check"); err != nil {
		t.Errorf("ipam check after deleting %s: %v\n%s", node, err, out)
	}
	t.Logf("%s drained, stopped and deleted: blocks %v released and gone from every node and router", node, cidrs)
}
