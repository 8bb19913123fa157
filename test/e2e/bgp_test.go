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
	t.Log("reliability: does: runs three agents behind a BIRD route reflector (mesh off, keepalive 1s, hold 3s), checks the full pod matrix, SIGKILLs the reflector and checks the learned routes stay for the hold time, then are withdrawn")
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
	t.Logf("reliability: figure: routes withdrawn after the reflector died: %s (hold time 3s)", gone.Round(100*time.Millisecond))
	if gone < 2*time.Second {
		t.Errorf("routes withdrawn after %s, before the 3s hold time", gone)
	}
}
