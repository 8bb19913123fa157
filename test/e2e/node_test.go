package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gingham-net/gingham/test/labnet"
)

// TestAgentOneNode is issue 4's acceptance with the whole product on one
// node: gingham-node against the real API server, three pods attached by
// the CNI plugins as a runtime does; pod↔pod ping and TCP, pod→node,
// pod→outside through natOutgoing (the outside sees the node's address),
// 169.254.1.1 resolved to ee:ee:ee:ee:ee:ee; then kill -9 of the agent
// leaves every route in place, and the restarted agent adopts them without
// deleting or re-adding any (watched with `ip monitor route`).
func TestAgentOneNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	spec := labnet.MeshSpec(labnet.TestPrefix(), runDir(t), 1)
	lab, env := agentLab(t, ctx, spec)
	pods := createPods(t, ctx, lab, env, 3)
	requireMatrix(t, ctx, pods)
	node := spec.Nodes[0]
	if err := labnet.Ping(ctx, pods[0].NetNS, node.Addr.Addr(), 3); err != nil {
		t.Errorf("pod -> node: %v", err)
	}
	out, err := labnet.Run(ctx, pods[0].NetNS, "ip", "neigh", "show", "169.254.1.1")
	if err != nil || !strings.Contains(out, "lladdr ee:ee:ee:ee:ee:ee") {
		t.Errorf("pod's neighbour for 169.254.1.1 is not ee:ee:ee:ee:ee:ee (err %v): %q", err, out)
	}

	// natOutgoing: the switch's address is outside every pool.
	outside := spec.Segments[0].Gateway
	capture, err := lab.StartCapture(ctx, "outside", "switch", spec.Segments[0].Bridge(), "icmp and host "+outside.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := labnet.Ping(ctx, pods[1].NetNS, outside, 3); err != nil {
		t.Errorf("pod -> outside: %v", err)
	}
	if out, err = capture.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, node.Addr.Addr().String()+" > "+outside.String()+": ICMP echo request") || strings.Contains(out, pods[1].IP.String()) {
		t.Errorf("outside does not see the node's address (natOutgoing) for %s:\n%s", pods[1].IP, out)
	}

	// kill -9: routes stay.
	before, err := lab.Run(ctx, node.Name, "ip", "route", "show", "proto", "96")
	if err != nil || strings.Count(before, "\n") < 4 {
		t.Fatalf("expected 3 pod routes and a blackhole (err %v):\n%s", err, before)
	}
	agent, _ := lab.Daemon(node.Name + "/gingham-node")
	if err := agent.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-agent.Exited()
	_ = lab.StopDaemon(node.Name+"/gingham-node", time.Second)
	if after, _ := lab.Run(ctx, node.Name, "ip", "route", "show", "proto", "96"); after != before {
		t.Fatalf("routes changed when the agent was killed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if m, _ := labnet.CheckMatrix(ctx, pods, nil); !m.Complete() {
		t.Errorf("pods cut off while the agent is down:\n%s", strings.Join(m.Failures(), "\n"))
	}

	// Restart: watch every route change in the node while it adopts.
	monitorLog := filepath.Join(lab.NodeDir(node.Name), "ip-monitor.log")
	monitor, err := labnet.StartDaemon("ip-monitor", lab.NS(node.Name), monitorLog, nil, "ip", "monitor", "route")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := lab.StartAgent(node.Name, ""); err != nil {
		t.Fatal(err)
	}
	// Wait for the restarted agent to have applied (its status is fresh).
	time.Sleep(8 * time.Second)
	_ = monitor.Stop(time.Second)
	events, _ := os.ReadFile(monitorLog)
	for _, p := range pods {
		if strings.Contains(string(events), p.IP.String()) {
			t.Errorf("restart touched the route of %s:\n%s", p, events)
		}
	}
	if strings.Contains(string(events), "blackhole") {
		t.Errorf("restart touched the block's blackhole:\n%s", events)
	}
	if after, _ := lab.Run(ctx, node.Name, "ip", "route", "show", "proto", "96"); after != before {
		t.Errorf("routes differ after the restart:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	t.Logf("route events during the restart: %q", strings.TrimSpace(string(events)))
}
