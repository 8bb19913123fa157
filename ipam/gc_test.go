package ipam_test

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/ipam"
	"github.com/gingham-net/gingham/ipam/k8sstore"
)

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// staleCluster answers lists from a snapshot missing some pods (as a list
// taken just before they were created would), but Exists from the API.
type staleCluster struct {
	ipam.Cluster
	hide map[string]bool
}

func (s staleCluster) ListPods(ctx context.Context) ([]ipam.PodKey, error) {
	pods, err := s.Cluster.ListPods(ctx)
	return slices.DeleteFunc(pods, func(p ipam.PodKey) bool { return s.hide[p.Name] }), err
}

func assignFor(t *testing.T, ctx context.Context, a *ipam.Allocator, podName, nodeName string) netip.Addr {
	t.Helper()
	addr, err := a.Assign(ctx, ipam.AssignRequest{
		Handle: "k8s-pod-network." + podName, Node: nodeName,
		Attrs: map[string]string{ipam.AttrPodName: podName, ipam.AttrNamespace: "default"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestGCReleasesLeaksAfterGrace(t *testing.T) {
	t.Log("reliability: does: runs GC passes on an injected clock over a deleted pod's, a never-existing pod's, a gone node's tunnel address and a half-written handle, beside live pods (one hidden from a stale pod list), and checks that only the leaks are released and only after the 10m grace")
	ctx, store := setup(t)
	pool(t, "p", "10.3.0.0/24", 26)
	node(t, "n1", nil)
	a := ipam.New(store, ipam.Options{})
	for _, p := range []string{"live", "deleted", "recreated"} {
		pod(t, p, "n1")
	}
	live := assignFor(t, ctx, a, "live", "n1")
	deleted := assignFor(t, ctx, a, "deleted", "n1")
	recreated := assignFor(t, ctx, a, "recreated", "n1")
	neverExisted := assignFor(t, ctx, a, "never-existed", "n1")
	onGoneNode := assignFor(t, ctx, a, "on-gone-node", "gone-node")
	tunnel, err := a.AssignTunnelAddr(ctx, "gone-node", nil)
	if err != nil {
		t.Fatal(err)
	}
	pod(t, "on-gone-node", "gone-node") // its node is gone but the pod object lingers
	deletePod(t, "deleted")
	// A handle whose assignment died between its handle and block writes.
	half := &v1.IPAMHandle{Spec: v1.IPAMHandleSpec{HandleID: "k8s-pod-network.half", Block: map[string]int{ipam.BlockOf(live, 26).String(): 1}}}
	half.Name = ipam.HandleName(half.Spec.HandleID)
	if err := store.Create(ctx, half); err != nil {
		t.Fatal(err)
	}

	clk := &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	cluster := staleCluster{Cluster: k8sstore.NewCluster(env.Client), hide: map[string]bool{"recreated": true}}
	gc := ipam.NewGC(store, cluster, env.Kube, "n1", nil, ipam.GCOptions{Grace: 10 * time.Minute, Now: clk.Now})

	steps := []struct {
		name         string
		advance      time.Duration
		wantReleased []netip.Addr
		wantHandles  []string
	}{
		{"first sight: only suspected", 0, nil, nil},
		{"inside the grace period", 9 * time.Minute, nil, nil},
		{"grace over: deleted pod, missing pod, gone node's tunnel, empty handle", 2 * time.Minute, []netip.Addr{deleted, neverExisted, tunnel}, []string{"k8s-pod-network.half"}},
		{"much later: live pods never released", 24 * time.Hour, nil, nil},
		{"and again", 24 * time.Hour, nil, nil},
	}
	for _, s := range steps {
		clk.Add(s.advance)
		res, err := gc.Sync(ctx)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		var got []netip.Addr
		for _, al := range res.Released {
			got = append(got, al.Addr)
		}
		slices.SortFunc(got, netip.Addr.Compare)
		want := slices.Clone(s.wantReleased)
		slices.SortFunc(want, netip.Addr.Compare)
		if !slices.Equal(got, want) {
			t.Fatalf("%s: released %v, want %v", s.name, got, want)
		}
		if !slices.Equal(res.HandlesDeleted, s.wantHandles) {
			t.Fatalf("%s: deleted handles %v, want %v", s.name, res.HandlesDeleted, s.wantHandles)
		}
	}
	kept := 0
	for _, addr := range []netip.Addr{live, recreated, onGoneNode} {
		if _, err := a.AllocationOf(ctx, addr); err != nil {
			t.Errorf("address %s of an existing pod was released: %v", addr, err)
		} else {
			kept++
		}
	}
	t.Logf("reliability: figure: leaks released after the grace: 3 addresses, 1 handle")
	t.Logf("reliability: figure: live pods' addresses kept: %d of 3", kept)
	rep, err := ipam.NewChecker(store, k8sstore.NewCluster(env.Client)).Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.PodGone) != 0 || len(rep.HandlesWithoutAllocations) != 0 || len(rep.AllocationsWithoutHandles) != 0 {
		t.Errorf("after GC the checker still reports %+v", rep)
	}
	if len(rep.NodeGone) != 1 || rep.NodeGone[0].Addr != onGoneNode {
		t.Errorf("checker NodeGone = %+v, want only the lingering pod's %s", rep.NodeGone, onGoneNode)
	}
}

// TestGCRunLeaderElected runs two GCs through Run: one takes the Lease and
// releases a deleted pod's address; the live pod's address stays.
func TestGCRunLeaderElected(t *testing.T) {
	t.Log("reliability: does: runs two leader-elected GCs (grace 1s) against a deleted pod's and a live pod's address and checks one holds the Lease, the leak is released and the live address stays")
	ctx, store := setup(t)
	pool(t, "p", "10.4.0.0/24", 26)
	node(t, "n1", nil)
	a := ipam.New(store, ipam.Options{})
	pod(t, "stays", "n1")
	pod(t, "goes", "n1")
	stays := assignFor(t, ctx, a, "stays", "n1")
	goes := assignFor(t, ctx, a, "goes", "n1")
	deletePod(t, "goes")

	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	opts := ipam.GCOptions{Grace: time.Second, Interval: 300 * time.Millisecond, LeaseName: "ipam-gc-test",
		LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 300 * time.Millisecond}
	for _, id := range []string{"agent-a", "agent-b"} {
		gc := ipam.NewGC(store, k8sstore.NewCluster(env.Client), env.Kube, id, nil, opts)
		wg.Go(func() { _ = gc.Run(runCtx) })
	}
	start := time.Now()
	deadline := start.Add(30 * time.Second)
	for {
		if _, err := a.AllocationOf(ctx, goes); err != nil {
			t.Logf("reliability: figure: leak released after: %s (grace 1s)", time.Since(start).Round(100*time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deleted pod's address %s not released within 30s", goes)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var lease coordinationv1.Lease
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "ipam-gc-test"}, &lease); err != nil {
		t.Fatal(err)
	}
	if h := lease.Spec.HolderIdentity; h == nil || (*h != "agent-a" && *h != "agent-b") {
		t.Fatalf("lease holder %v, want one of the agents", h)
	}
	stop()
	wg.Wait()
	if _, err := a.AllocationOf(ctx, stays); err != nil {
		t.Fatalf("live pod's address released: %v", err)
	}
}

func clusterOf() ipam.Cluster { return k8sstore.NewCluster(env.Client) }
