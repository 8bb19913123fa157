package kcluster

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gingham-net/gingham/hack/image/oci"
	"github.com/gingham-net/gingham/internal/testenv"
	"github.com/gingham-net/gingham/test/labnet"
)

// prerequisites are what TestCluster needs from make tools, make build
// and make image (all prerequisites of make test).
var prerequisites = []string{"kubelet", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
	"kube-proxy", "kubectl", "containerd", "containerd-shim-runc-v2", "ctr", "e2e.test", "etcd",
	"images/gingham.tar", "images/pause.tar", "images/agnhost.tar"}

// need fails (under make test) or skips the test when something it needs
// is missing.
func need(t *testing.T, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if testenv.Required() {
		t.Fatalf("%s (make test provides it)", what)
	}
	t.Skip(what)
}

// imageTag is the tag of the gingham image in bin/images/gingham.tar
// (make image). When GINGHAM_IMAGE_TAG is set (make test sets it to make
// image's VERSION), the archive must carry that tag.
func imageTag(t *testing.T, images string) string {
	t.Helper()
	a, err := oci.Read(filepath.Join(images, "gingham.tar"))
	if err != nil {
		t.Fatalf("gingham image: %v", err)
	}
	var tags []string
	for _, r := range a.Refs() {
		if tag, ok := strings.CutPrefix(r, ImageRepo+":"); ok {
			tags = append(tags, tag)
		}
	}
	if len(tags) != 1 {
		t.Fatalf("gingham image: want one %s tag, got %v", ImageRepo, a.Refs())
	}
	if want := os.Getenv("GINGHAM_IMAGE_TAG"); want != "" && want != tags[0] {
		t.Fatalf("bin/images/gingham.tar is %s:%s, want tag %s (run make image)", ImageRepo, tags[0], want)
	}
	return tags[0]
}

// TestCluster is gingham on a real Kubernetes cluster: three nodes
// (containerd, kubelet, kube-proxy) in two racks behind FRR ToRs, gingham
// installed from deploy/ with kubectl, a pod matrix, then Kubernetes' own
// [sig-network] Networking Granular Checks: Pods. It needs root; it leaves
// the host as it found it (checked).
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("a real cluster: minutes, root, make tools/build/image (make test runs it)")
	}
	need(t, os.Geteuid() == 0, "needs root (namespaces, cgroups, mounts)")
	bin := labnet.BinDir()
	for _, p := range prerequisites {
		_, err := os.Stat(filepath.Join(bin, p))
		need(t, err == nil, "missing bin/"+p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	_ = labnet.CleanupStale(ctx)
	runDir, err := os.MkdirTemp("/var/tmp", "gingham-cluster-test-")
	if err != nil {
		t.Fatal(err)
	}
	o := Options{RunDir: runDir, Prefix: fmt.Sprintf("ghk%d-", os.Getpid()%100000), Nodes: 3, Bin: bin, Images: filepath.Join(bin, "images")}
	tag := imageTag(t, o.Images)
	c, err := Attach(o)
	if err != nil {
		t.Fatal(err)
	}
	base := Snapshot(ctx, o.Prefix)
	t.Cleanup(func() {
		if err := Down(context.Background(), o); err != nil {
			t.Errorf("down: %v", err)
		}
		after := Snapshot(context.Background(), o.Prefix)
		if d := base.Diff(after); len(d) > 0 {
			t.Errorf("the host differs after down:\n  %s", strings.Join(d, "\n  "))
		}
		if t.Failed() {
			t.Logf("logs kept in %s", filepath.Join(runDir, "logs"))
		} else {
			_ = os.RemoveAll(runDir)
		}
	})
	start := time.Now()
	if err := c.Up(ctx); err != nil {
		t.Fatalf("up: %v", err)
	}
	t.Logf("control plane and %d nodes registered in %s", o.Nodes, time.Since(start).Round(time.Millisecond))
	if err := c.InstallGingham(ctx, tag, opsEnv); err != nil {
		out, _ := c.Kubectl(ctx, "-n", "gingham-system", "get", "pods", "-o", "wide")
		t.Fatalf("install gingham: %v\n%s", err, out)
	}
	t.Logf("gingham installed, every node Ready, %s after start", time.Since(start).Round(time.Millisecond))

	var pods []Pod
	t.Run("matrix", func(t *testing.T) {
		var err error
		pods, err = c.DeployMatrix(ctx, "matrix", 2)
		if err != nil {
			t.Fatal(err)
		}
		nodes := map[string]bool{}
		for _, p := range pods {
			nodes[p.Node] = true
		}
		if len(pods) != 6 || len(nodes) != 3 {
			t.Fatalf("want 6 pods on 3 nodes, got %v", pods)
		}
		m := c.CheckMatrix(ctx, "matrix", pods)
		if m.Passed() != len(m.Probes) {
			t.Fatalf("pod matrix:\n%s", m)
		}
		t.Logf("pod matrix: %d/%d pairs, ping and TCP", m.Passed(), len(m.Probes))
	})

	t.Run("MetricsOnNodeAddress", func(t *testing.T) {
		// A Prometheus on the node network scrapes each agent at its node
		// address (GINGHAM_METRICS_ADDR, default :9091 on the node IP).
		for _, n := range c.Spec.Nodes {
			url := fmt.Sprintf("http://%s:9091/metrics", n.Addr.Addr())
			resp, err := http.Get(url)
			if err != nil {
				t.Errorf("%s: %v", url, err)
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "bgp_peer_asn") {
				t.Errorf("%s: %s, %d bytes, no bgp_peer_asn", url, resp.Status, len(body))
			}
		}
	})

	t.Run("GranularChecks", func(t *testing.T) {
		res, err := c.E2E(ctx, filepath.Join(runDir, "logs", "e2e-granular"), GranularFocus, KernelSkip)
		if err != nil {
			t.Fatal(err)
		}
		if len(res) < 4 {
			t.Fatalf("want the 4 non-SCTP Granular Checks, ran %d: %v", len(res), res)
		}
		for _, r := range res {
			if r.State != "passed" {
				t.Errorf("%s: %s (%s)", r.Name, r.State, r.Failure)
			} else {
				t.Logf("passed in %s: %s", r.Duration, r.Name)
			}
		}
	})

	if t.Failed() {
		return
	}
	// Operations under the kubelet, in an order that keeps each one's
	// preconditions: the drained node goes last. They start on a quiet
	// cluster: the e2e suite's namespaces gone.
	if err := c.WaitFor(ctx, 3*time.Minute, "the e2e namespaces deleted", func(ctx context.Context) (bool, error) {
		out, err := c.Kubectl(ctx, "get", "namespaces", "-o", "jsonpath={.items[*].status.phase}")
		return err == nil && !strings.Contains(out, "Terminating"), nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Run("DeleteAgentPod", func(t *testing.T) { testDeleteAgentPod(t, ctx, c, "rack2-node1") })
	t.Run("RolloutRestartUnderTraffic", func(t *testing.T) { testRolloutRestart(t, ctx, c, pods) })
	t.Run("Burst100", func(t *testing.T) { testBurst(t, ctx, c) })
	t.Run("DrainDeleteNode", func(t *testing.T) { testDrainDelete(t, ctx, c, "rack1-node2") })
}
