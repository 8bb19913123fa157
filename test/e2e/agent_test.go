package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/internal/testenv"
	"github.com/gingham-net/gingham/test/labnet"
)

// needBinaries ends a test unless `make build` has produced the product.
func needBinaries(t *testing.T) {
	t.Helper()
	for _, b := range []string{"gingham-node", "gingham", "gingham-ipam"} {
		if _, err := os.Stat(filepath.Join(labnet.BinDir(), b)); err != nil {
			if testenv.Required() {
				t.Fatalf("%s missing in bin/ (make build): %v", b, err)
			}
			t.Skipf("%s missing in bin/ (make build)", b)
		}
	}
}

// agentLab builds spec, starts the routers, the API proxies and
// gingham-node on every node, and returns once each node's kernel has a
// blackhole for a block of its own (the agent is programming routes).
// extra is added to every agent's environment.
func agentLab(t *testing.T, ctx context.Context, spec labnet.Spec, extra ...string) (*labnet.Lab, *testenv.Env) {
	t.Helper()
	needRoot(t, "busybox")
	needBinaries(t)
	env := controlPlane(t)
	lab := newLab(t, ctx, spec)
	if len(spec.Routers) > 0 {
		if err := lab.StartRouters(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := lab.StartAPIProxies(env.Config, env.Kubeconfig); err != nil {
		t.Fatal(err)
	}
	if err := lab.RegisterNodes(ctx, env.Client); err != nil {
		t.Fatal(err)
	}
	if err := lab.ApplyObjects(ctx, env.Client); err != nil {
		t.Fatal(err)
	}
	if err := lab.StartAgents("", extra...); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ctx, lab)
	return lab, env
}

// waitReady waits until every agent answers /readyz with 200: its BGP
// sessions are Established and its first reconcile went through.
func waitReady(t *testing.T, ctx context.Context, lab *labnet.Lab) {
	t.Helper()
	for _, n := range lab.Spec.Nodes {
		waitFor(t, ctx, n.Name+" agent ready", func() (bool, string) {
			out, err := labnet.Run(ctx, lab.NS(n.Name), "busybox", "wget", "-q", "-O", "-", "http://127.0.0.1:9099/readyz")
			return err == nil, out
		})
	}
}

// createPods attaches perNode pods to every node through the real gingham
// CNI plugin and gingham-ipam.
func createPods(t *testing.T, ctx context.Context, lab *labnet.Lab, env *testenv.Env, perNode int) []*labnet.Pod {
	t.Helper()
	var pods []*labnet.Pod
	for _, n := range lab.Spec.Nodes {
		for i := 0; i < perNode; i++ {
			p, err := lab.CreatePod(ctx, env.Client, labnet.PodRequest{Node: n.Name, Namespace: "default",
				Name: n.Name + "-" + string(rune('a'+i))})
			if err != nil {
				t.Fatalf("create pod on %s: %v", n.Name, err)
			}
			if !lab.Spec.PoolCIDR.Contains(p.IP) {
				t.Fatalf("pod %s got %s outside the pool %s", p, p.IP, lab.Spec.PoolCIDR)
			}
			pods = append(pods, p)
		}
	}
	return pods
}

// waitMatrix polls the connectivity matrix until it is complete (routes
// converge over BGP) or ctx ends, and returns the last one.
func waitMatrix(t *testing.T, ctx context.Context, pods []*labnet.Pod) *labnet.Matrix {
	t.Helper()
	for {
		m, err := labnet.CheckMatrix(ctx, pods, nil)
		if err != nil {
			t.Fatal(err)
		}
		if m.Complete() || ctx.Err() != nil {
			return m
		}
		time.Sleep(time.Second)
	}
}

// requireMatrix waits up to a minute for the pods' connectivity matrix to
// be complete, logs it, and ends the test when it is not.
func requireMatrix(t *testing.T, ctx context.Context, pods []*labnet.Pod) {
	t.Helper()
	mctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	m := waitMatrix(t, mctx, pods)
	t.Logf("connectivity matrix:\n%s", m)
	if !m.Complete() {
		t.Fatalf("matrix incomplete:\n%s", strings.Join(m.Failures(), "\n"))
	}
}

// TestAgentMesh is issue 5's mesh acceptance: three nodes on one L2
// underlay running gingham-node with the node-to-node mesh exchange their
// blocks; pods on different nodes reach each other with no encapsulation
// (a capture on the underlay shows plain pod addresses).
func TestAgentMesh(t *testing.T) {
	t.Log("reliability: does: runs a 3-node mesh with pods, checks the connectivity matrix, plain (unencapsulated) pod traffic on the underlay, and that GoBGP's gRPC API is served only on the node's unix socket (a TCP connect to port 50051 inside the node fails)")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	spec := labnet.MeshSpec(labnet.TestPrefix(), runDir(t), 3)
	lab, env := agentLab(t, ctx, spec)
	pods := createPods(t, ctx, lab, env, 2)

	requireMatrix(t, ctx, pods)

	// Every node reports its mesh sessions Established in its status.
	for _, n := range spec.Nodes {
		waitFor(t, ctx, n.Name+" status shows 2 established mesh sessions", func() (bool, string) {
			var st v1.GinghamNodeStatus
			if err := env.Client.Get(ctx, client.ObjectKey{Name: n.Name}, &st); err != nil {
				return false, err.Error()
			}
			up := 0
			for _, s := range st.Status.Sessions {
				if s.State == "Established" && s.PeerType == "node-to-node mesh" {
					up++
				}
			}
			return up == 2, fmt.Sprintf("%+v", st.Status.Sessions)
		})
	}

	// The stock (v4) gobgp CLI inspects a node's speaker through its unix
	// socket; GoBGP's gRPC is not on TCP.
	cli := filepath.Join(labnet.BinDir(), "gobgp")
	out, err := labnet.Run(ctx, "", cli, "--target", "unix://"+lab.BGPSocket("node1"), "neighbor")
	if err != nil || strings.Count(out, "Establ") != 2 {
		t.Errorf("gobgp CLI over the unix socket: want 2 Established neighbors (err %v):\n%s", err, out)
	}
	if _, err := labnet.Run(ctx, lab.NS("node1"), "busybox", "nc", "-w", "1", "127.0.0.1", "50051"); err == nil {
		t.Errorf("GoBGP gRPC reachable over TCP port 50051 on node1")
	} else {
		t.Logf("reliability: figure: %s: %s", "GoBGP gRPC over TCP 127.0.0.1:50051 on node1", "connection fails (unix socket only)")
	}

	// ginghamctl node status on a node reads the agent's local socket and
	// needs no API access.
	ctlCmd := labnet.Command(ctx, "", filepath.Join(labnet.BinDir(), "ginghamctl"), "node", "status", "--node", "node1")
	ctlCmd.Env = append(os.Environ(), "GINGHAM_STATUS_SOCKET="+lab.StatusSocket("node1"), "KUBECONFIG=/nonexistent")
	if b, err := ctlCmd.CombinedOutput(); err != nil || strings.Count(string(b), "Established") != 2 || !strings.Contains(string(b), "node-to-node mesh") {
		t.Errorf("ginghamctl node status from the local socket (err %v):\n%s", err, b)
	} else {
		t.Logf("ginghamctl node status --node node1 (local socket):\n%s", b)
	}

	// On this kernel (no ipip) a pool asking for IPIP is reported
	// unavailable, in the status of every node, while the other pool's
	// traffic keeps flowing.
	bs := 26
	ipipPool := &v1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "ipip-pool"},
		Spec: v1.IPPoolSpec{CIDR: "10.246.0.0/16", BlockSize: &bs, IPIPMode: v1.EncapAlways}}
	if err := env.Client.Create(ctx, ipipPool); err != nil {
		t.Fatal(err)
	}
	for _, n := range spec.Nodes {
		waitFor(t, ctx, n.Name+" reports ipip-pool unavailable", func() (bool, string) {
			var st v1.GinghamNodeStatus
			if err := env.Client.Get(ctx, client.ObjectKey{Name: n.Name}, &st); err != nil {
				return false, err.Error()
			}
			for _, c := range st.Status.UnavailablePools {
				if c.Pool == "ipip-pool" && strings.Contains(c.Message, "ipip") {
					return true, ""
				}
			}
			return false, fmt.Sprintf("%+v", st.Status.UnavailablePools)
		})
	}
	if m := waitMatrix(t, ctx, pods); !m.Complete() {
		t.Errorf("default pool traffic broken once an IPIP pool exists:\n%s", strings.Join(m.Failures(), "\n"))
	}

	// Each node has a route to every other node's block via that node, and
	// a blackhole for its own.
	for _, n := range spec.Nodes {
		out, err := lab.Run(ctx, n.Name, "ip", "route", "show", "proto", "96")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "blackhole 10.244.") {
			t.Errorf("%s: no blackhole for its block:\n%s", n.Name, out)
		}
		for _, o := range spec.Nodes {
			if o.Name != n.Name && !strings.Contains(out, "via "+o.Addr.Addr().String()) {
				t.Errorf("%s: no route via %s:\n%s", n.Name, o.Name, out)
			}
		}
	}

	// The underlay carries plain pod addresses: no IPIP (protocol 4).
	src, dst := pods[0], pods[len(pods)-1]
	capture, err := lab.StartCapture(ctx, "underlay", src.Node, "eth0", "icmp or ip proto 4")
	if err != nil {
		t.Fatal(err)
	}
	if err := labnet.Ping(ctx, src.NetNS, dst.IP, 3); err != nil {
		t.Fatal(err)
	}
	out, err = capture.Stop(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, src.IP.String()+" > "+dst.IP.String()+": ICMP echo request") {
		t.Errorf("underlay capture lacks the plain pod-to-pod ICMP:\n%s", out)
	}
	if strings.Contains(out, "ipip") || strings.Contains(out, "proto IPIP") {
		t.Errorf("underlay capture shows encapsulation:\n%s", out)
	}
}
