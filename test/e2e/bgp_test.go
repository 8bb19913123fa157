package e2e

import (
	"context"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/test/labnet"
)

// learnedVia reports whether node's kernel has gingham's route to some
// block via gw.
func learnedVia(ctx context.Context, lab *labnet.Lab, node, gw string) (bool, string) {
	out, err := lab.Run(ctx, node, "ip", "route", "show", "proto", "96")
	if err != nil {
		return false, err.Error()
	}
	return regexp.MustCompile(`(?m)^10\.244\.\S+ via ` + regexp.QuoteMeta(gw) + `\b`).MatchString(out), out
}

// TestAgentRouteReflector is issue 5's route-reflector acceptance: BIRD
// reflects for every node (mesh off); routes converge; when the reflector
// dies (SIGKILL: no NOTIFICATION) the learned routes stay until the hold
// time runs out, then are withdrawn.
func TestAgentRouteReflector(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	spec := labnet.RRSpec(labnet.TestPrefix(), runDir(t), 3)
	for _, o := range spec.Objects { // short timers keep the test short: hold = 3 x 1s
		if p, ok := o.(*v1.BGPPeer); ok {
			p.Spec.KeepaliveTime = &metav1.Duration{Duration: time.Second}
			p.Spec.MaxRestartTime = &metav1.Duration{Duration: 3 * time.Second}
		}
	}
	lab, env := agentLab(t, ctx, spec)
	pods := createPods(t, ctx, lab, env, 1)
	requireMatrix(t, ctx, pods)
	out, err := lab.Birdc(ctx, "rr", "show", "route")
	if err != nil || strings.Count(out, "10.244.") < 3 {
		t.Errorf("reflector lacks the nodes' blocks (err %v):\n%s", err, out)
	}
	n1, n2 := spec.Nodes[0], spec.Nodes[1]
	if ok, out := learnedVia(ctx, lab, n1.Name, n2.Addr.Addr().String()); !ok {
		t.Fatalf("%s has no route via %s before the reflector dies:\n%s", n1.Name, n2.Name, out)
	}

	d, _ := lab.Daemon("rr/bird")
	if err := d.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	if ok, out := learnedVia(ctx, lab, n1.Name, n2.Addr.Addr().String()); !ok {
		t.Errorf("routes withdrawn at once when the reflector died; want them kept for the hold time:\n%s", out)
	}
	waitFor(t, ctx, "routes withdrawn after the hold time", func() (bool, string) {
		ok, out := learnedVia(ctx, lab, n1.Name, n2.Addr.Addr().String())
		return !ok, out
	})
	gone := time.Since(killed)
	t.Logf("routes withdrawn %s after the reflector was killed (hold time 3s; the reflector advertised a graceful-restart time of 10s)", gone.Round(100*time.Millisecond))
	if gone < 2*time.Second {
		t.Errorf("routes withdrawn after %s, before the 3s hold time", gone)
	}
}

// TestAgentRestartKeepsForwarding is issue 5's restart acceptance: SIGTERM
// and restart of one agent while pods on the two other nodes ping each
// other and a pod behind the restarting node: no packet is lost, and the
// peers keep the restarting node's routes meanwhile.
func TestAgentRestartKeepsForwarding(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	spec := labnet.MeshSpec(labnet.TestPrefix(), runDir(t), 3)
	lab, env := agentLab(t, ctx, spec)
	pods := createPods(t, ctx, lab, env, 1) // node1-a, node2-a, node3-a
	requireMatrix(t, ctx, pods)
	before, _ := lab.Run(ctx, "node1", "ip", "route", "show", "proto", "96")

	type result struct {
		name string
		out  string
		err  error
	}
	results := make(chan result, 2)
	ping := func(name string, from *labnet.Pod, to *labnet.Pod) {
		out, err := labnet.Run(ctx, from.NetNS, "busybox", "ping", "-c", "60", "-i", "0.25", "-W", "1", to.IP.String())
		results <- result{name, out, err}
	}
	go ping("node2 pod -> node3 pod", pods[1], pods[2])
	go ping("node2 pod -> node1 pod (through the restarting node)", pods[1], pods[0])

	time.Sleep(2 * time.Second)
	if err := lab.StopDaemon("node1/gingham-node", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	// While the agent is down, its peers keep its block (graceful restart).
	time.Sleep(3 * time.Second)
	if ok, out := learnedVia(ctx, lab, "node2", spec.Nodes[0].Addr.Addr().String()); !ok {
		t.Errorf("node2 dropped node1's routes while node1's agent was down:\n%s", out)
	}
	if _, err := lab.StartAgent("node1", ""); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		r := <-results
		loss := regexp.MustCompile(`(\d+)% packet loss`).FindStringSubmatch(r.out)
		if r.err != nil || loss == nil || loss[1] != "0" {
			t.Errorf("%s: packets lost across the restart (err %v):\n%s", r.name, r.err, r.out)
		} else {
			t.Logf("%s: %s", r.name, strings.TrimSpace(r.out[strings.LastIndex(r.out, "---"):]))
		}
	}
	after, _ := lab.Run(ctx, "node1", "ip", "route", "show", "proto", "96")
	if before != after {
		t.Errorf("node1's routes changed across the restart:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
