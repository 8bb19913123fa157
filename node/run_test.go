package node

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/felix"
	"github.com/gingham-net/gingham/internal/testenv"
	"github.com/gingham-net/gingham/ipam"
)

// fakeMachine is a node without a kernel: felix, tunl0, the MTU file and
// the endpoints are fakes, everything else of run is real.
type fakeMachine struct{ dp *fakeDataplane }

var _ machine = fakeMachine{}

func (fakeMachine) MTU(netip.Addr) (MTUFile, int, error) { return &fakeMTU{}, 1500, nil }

func (fakeMachine) Tunnel(client.Client, *ipam.Allocator, int) Tunnel { return &fakeTunnel{} }

func (m fakeMachine) Dataplane(onApply func(felix.Report)) (runnableDataplane, error) {
	m.dp.mu.Lock()
	defer m.dp.mu.Unlock()
	m.dp.onApply = func() { onApply(felix.Report{}) }
	return runningDataplane{m.dp}, nil
}

func (fakeMachine) Endpoints() EndpointSource { return fakeEndpoints{} }

// runningDataplane is the fake felix with felix's owner loop.
type runningDataplane struct{ *fakeDataplane }

func (runningDataplane) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// goroutines returns every goroutine's stack by goroutine ID.
func goroutines() map[string]string {
	buf := make([]byte, 16<<20)
	buf = buf[:runtime.Stack(buf, true)]
	out := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		if f := strings.Fields(g); len(f) > 1 && f[0] == "goroutine" {
			out[f[1]] = g
		}
	}
	return out
}

// freePort returns a TCP port nobody listens on (for the BGP listener).
func freePort(t *testing.T) int32 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return int32(ln.Addr().(*net.TCPAddr).Port)
}

// TestRunJoinsEveryGoroutine runs the agent's composition root against
// the real API server (its kernel faked) until it is Ready, stops it, and
// checks that when run returns no goroutine it started is left: the
// informers, the IPAM GC, the health, metrics and status servers, the CNI
// kubeconfig refresher, the status writer, the loop and the BGP speaker.
func TestRunJoinsEveryGoroutine(t *testing.T) {
	testenv.Need(t, testEnv)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := testEnv.Client
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "leak-node"}}
	port := freePort(t)
	bgpCfg := &v1.BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: v1.NodeBGPConfigPrefix + node.Name}, Spec: v1.BGPConfigurationSpec{ListenPort: &port}}
	for _, o := range []client.Object{node, bgpCfg} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Delete(context.Background(), o) })
	}
	dir := t.TempDir()
	cfg, err := LoadConfig(nil, daemonSetEnv(map[string]string{"GINGHAM_NODENAME": node.Name, "GINGHAM_IP": "127.0.0.1/8",
		"GINGHAM_NAMESPACE": "default", "GINGHAM_HEALTH_ADDR": "127.0.0.1:0", "GINGHAM_METRICS_ADDR": "127.0.0.1:0",
		"GINGHAM_BGP_SOCKET": filepath.Join(dir, "bgp.sock"), "GINGHAM_STATUS_SOCKET": filepath.Join(dir, "status.sock"),
		"GINGHAM_STATE_DIR": dir}))
	if err != nil {
		t.Fatal(err)
	}
	kc, tok := filepath.Join(dir, "cni-kubeconfig"), filepath.Join(dir, "token")
	if err := os.WriteFile(kc, []byte(cniKubeconfigDoc("t1")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tok, []byte("t1"), 0o600); err != nil {
		t.Fatal(err)
	}
	log := zaptest.NewLogger(t)
	cni := &cniKubeconfig{path: kc, tokenFile: tok, interval: time.Second, log: log}

	before := goroutines()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- run(runCtx, cfg, testEnv.Config, fakeMachine{dp: newFakeDataplane()}, cni, log) }()
	for {
		var st v1.GinghamNodeStatus
		if err := c.Get(ctx, client.ObjectKey{Name: node.Name}, &st); err == nil && st.Status.AgentState == "Ready" {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("run ended before the node was Ready: %v", err)
		case <-ctx.Done():
			t.Fatal("node not Ready within 2 minutes")
		case <-time.After(100 * time.Millisecond):
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	var left []string
	for id, stack := range goroutines() {
		if _, old := before[id]; old {
			continue
		}
		for _, ours := range []string{"gingham-net/gingham/", "osrg/gobgp", "k8s.io/client-go/tools/cache", "controller-runtime"} {
			if strings.Contains(stack, ours) {
				left = append(left, stack)
				break
			}
		}
	}
	if len(left) > 0 {
		t.Errorf("%d goroutines started by run are still running after it returned:\n\n%s", len(left), strings.Join(left, "\n\n"))
	}
	var st v1.GinghamNodeStatus
	if err := c.Get(ctx, client.ObjectKey{Name: node.Name}, &st); err != nil || st.Status.AgentState != "Stopping" {
		t.Errorf("last status %q (%v), want Stopping", st.Status.AgentState, err)
	}
}
