package e2e

import (
	"context"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/test/bgpwire"
	"github.com/gingham-net/gingham/test/labnet"
)

// eorExtPrefix is the route the external speaker of
// TestReliabilityAgentRestartWaitsForEndOfRIB announces to node1.
var eorExtPrefix = netip.MustParsePrefix("192.168.77.0/24")

// eorEndOfRIB is the IPv4 unicast End-of-RIB marker: an UPDATE with no
// withdrawn routes, no attributes and no NLRI (RFC 4724).
func eorEndOfRIB() []byte {
	return bgpwire.Frame(bgpwire.TypeUpdate, bgpwire.UpdateBody(nil, nil, nil, -1))
}

// eorSendTable announces eorExtPrefix (next hop: the speaker itself) and
// then the End-of-RIB on s.
func eorSendTable(t *testing.T, s *bgpwire.Session, self netip.Addr) {
	t.Helper()
	for _, m := range [][]byte{bgpwire.Announce(self, []uint32{rbgpExtAS}, eorExtPrefix), eorEndOfRIB()} {
		if err := s.Send(m); err != nil {
			t.Fatalf("send to node1: %v", err)
		}
	}
}

// killAgent SIGKILLs node's agent and waits until it has exited.
func killAgent(t *testing.T, lab *labnet.Lab, node string) {
	t.Helper()
	d, ok := lab.Daemon(node + "/gingham-node")
	if !ok {
		t.Fatalf("%s's agent is not running", node)
	}
	if err := d.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.Exited():
	case <-time.After(20 * time.Second):
		t.Fatalf("%s's agent (pid %d) survived SIGKILL for 20s", node, d.PID)
	}
}

// TestReliabilityAgentRestartWaitsForEndOfRIB is issue 18 bug 1: after a
// SIGKILL restart the agent took its learned routes as complete once every
// session had been up and quiet for a second, and deleted a route whose
// peer had not sent it again yet (`ip monitor` showed it deleted and
// re-added). Here node1 of a 2-node mesh also peers with a hand-written
// external speaker that, after node1's restart, sends its table and its
// End-of-RIB only 3s after every session is Established. No gingham route
// may be deleted on node1 across the restart.
func TestReliabilityAgentRestartWaitsForEndOfRIB(t *testing.T) {
	t.Log("reliability: does: SIGKILLs node1's agent while it holds a route from an external speaker, restarts it, and has the speaker send its table and End-of-RIB 3s after every session is up again, recording node1's gingham route events")
	ctx, cancel := context.WithTimeout(context.Background(), rbgpBudget)
	defer cancel()
	spec := labnet.MeshSpec(labnet.TestPrefix(), runDir(t), 2)
	lab, env := agentLab(t, ctx, spec)
	self := rbgpExtAddr(0)
	ns := rbgpAttach(t, ctx, lab, "ext", self)
	as := int64(rbgpExtAS)
	peer := &v1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "slow-speaker"}, Spec: v1.BGPPeerSpec{Node: "node1", PeerIP: self.String(), ASNumber: &as}}
	if err := env.Client.Create(ctx, peer); err != nil {
		t.Fatal(err)
	}
	first := rbgpEstablish(t, ctx, ns, self)
	eorSendTable(t, first, self)
	waitFor(t, ctx, "node1 routes "+eorExtPrefix.String()+" via the external speaker", func() (bool, string) {
		return rbgpKernelRoute(ctx, lab, "node1", eorExtPrefix)
	})
	waitReady(t, ctx, lab)

	watch := rbgpWatchRoutes(t, lab, "node1")
	killAgent(t, lab, "node1")
	_ = first.Close()
	restarted := time.Now()
	if _, err := lab.StartAgent("node1", ""); err != nil {
		t.Fatal(err)
	}
	second := rbgpEstablish(t, ctx, ns, self)
	waitFor(t, ctx, "node1's sessions Established again", func() (bool, string) {
		n, out, err := rbgpNeighbors(ctx, lab, "node1")
		return err == nil && n["10.0.0.12"].State == "Establ" && n[self.String()].State == "Establ", out
	})
	time.Sleep(3 * time.Second) // the quiet second of the old rule, and more
	eorSendTable(t, second, self)
	waitReady(t, ctx, lab)
	time.Sleep(time.Second)

	watch.stop()
	_, dels, evs, err := watch.counts()
	if err != nil {
		t.Errorf("route events on node1 lost (%v): counts unknown", err)
	}
	t.Logf("reliability: figure: proto 96 route deletes on node1 across a SIGKILL restart with a peer 3s slow to send its table: %d", dels)
	if at, ok := watch.deleted(eorExtPrefix, restarted); ok || dels > 0 {
		lines := make([]string, len(evs))
		for i, e := range evs {
			lines[i] = e.String()
		}
		t.Errorf("node1 deleted gingham routes before the peer's End-of-RIB (%s deleted at %s):\n%s",
			eorExtPrefix, at.Format("15:04:05.000"), strings.Join(lines, "\n"))
	}
	if ok, out := rbgpKernelRoute(ctx, lab, "node1", eorExtPrefix); !ok {
		t.Errorf("node1 lost %s:\n%s", eorExtPrefix, out)
	}
}
