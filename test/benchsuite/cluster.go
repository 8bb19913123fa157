package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/gingham-net/gingham/test/bench/result"
	"github.com/gingham-net/gingham/test/kcluster"
)

// cmdCluster is B12: pod created → Running for a burst of pods per node on
// the real cluster (test/kcluster), gingham installed from deploy/ against
// the reference bridge + host-local plugins, each on a fresh cluster of
// the same harness in the same run.
func cmdCluster(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("cluster", flag.ExitOnError)
	dir := fs.String("results", DefaultResults, "results directory")
	reps := fs.Int("reps", 3, "bursts per network")
	perNode := fs.Int("per-node", 30, "pods per node in each burst")
	nodes := fs.Int("nodes", 3, "cluster nodes")
	tag := fs.String("image-tag", "", "the gingham image's tag (make image's VERSION)")
	_ = fs.Parse(args)
	if os.Geteuid() != 0 {
		return errors.New("needs root (namespaces, cgroups, mounts)")
	}
	if *tag == "" {
		return errors.New("-image-tag is required")
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	started := time.Now()
	lat := map[string][][]time.Duration{} // network → per burst, per pod
	for _, network := range []string{kcluster.NetworkGingham, kcluster.NetworkBridge} {
		o := kcluster.Options{RunDir: "/var/tmp/gingham-b12-" + network, Prefix: "gb12-", Nodes: *nodes,
			Bin: filepath.Join(root, "bin"), Images: filepath.Join(root, "bin", "images"), Network: network}
		bursts, err := b12Network(ctx, o, *tag, *reps, *perNode)
		if err != nil {
			return fmt.Errorf("B12 %s: %w", network, err)
		}
		lat[network] = bursts
	}
	pct := func(network string, q float64) result.Stat {
		var xs []float64
		for _, b := range lat[network] {
			xs = append(xs, percentile(b, q).Seconds())
		}
		return result.StatOf(xs)
	}
	ref := "bridge + host-local"
	g50, r50, g99, r99 := pct(kcluster.NetworkGingham, 0.5), pct(kcluster.NetworkBridge, 0.5), pct(kcluster.NetworkGingham, 0.99), pct(kcluster.NetworkBridge, 0.99)
	f := &result.File{
		Bench: "B12", Title: "Pod created → Running on a real cluster",
		Method: fmt.Sprintf("make cluster's cluster (%d nodes: containerd v2, kubelet, kube-proxy; FRR ToRs), fresh for each network: "+
			"gingham from deploy/ (kubectl apply -k), then the CNI reference bridge + host-local (podCIDR per node, static routes in the ToRs). "+
			"Each burst is a Deployment of %d pause pods (%d per node, spread evenly) created at once; a pod's latency is from the watch's first sight of it "+
			"(the ReplicaSet controller created it) to the watch's sight of phase Running. p50 and p99 per burst; %d bursts per network.",
			*nodes, *perNode**nodes, *perNode, *reps),
		Command: "make bench (benchsuite cluster)", Machine: machineLine(),
		Started: started, Finished: time.Now(),
		Figures: []result.Figure{
			{Bench: "B12", Name: fmt.Sprintf("pod created → Running, p50 (%d-pod burst per node)", *perNode), Unit: "s", Lower: true,
				Gingham: g50, Refs: []result.Value{{Name: ref, Stat: r50}}, Goal: "≤ 1.1× the reference",
				Met: ptr(result.Ratio(g50, r50) <= 1.1)},
			{Bench: "B12", Name: fmt.Sprintf("pod created → Running, p99 (%d-pod burst per node)", *perNode), Unit: "s", Lower: true,
				Gingham: g99, Refs: []result.Value{{Name: ref, Stat: r99}}, Goal: "≤ 1.1× the reference and ≤ 5 s (pod startup SLO)",
				Met: ptr(result.Ratio(g99, r99) <= 1.1 && g99.Median <= 5)},
		},
	}
	return f.Write(*dir)
}

// b12Network brings up a cluster with network, runs the bursts and takes
// it down.
func b12Network(ctx context.Context, o kcluster.Options, tag string, reps, perNode int) (bursts [][]time.Duration, err error) {
	c, err := kcluster.Attach(o)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, kcluster.Down(context.Background(), o)) }()
	if err := c.Up(ctx); err != nil {
		return nil, err
	}
	if o.Network == kcluster.NetworkBridge {
		err = c.InstallBridge(ctx)
	} else {
		err = c.InstallGingham(ctx, tag, nil)
	}
	if err != nil {
		return nil, err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", c.AdminKubeconfig())
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 200, 400
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	for i := range reps {
		lat, err := b12Burst(ctx, c, kc, fmt.Sprintf("b12-%d", i), perNode*len(c.Spec.Nodes))
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(os.Stderr, "B12 %s burst %d: %d pods, p50 %s p99 %s\n", o.Network, i+1, len(lat),
			percentile(lat, 0.5).Round(time.Millisecond), percentile(lat, 0.99).Round(time.Millisecond))
		bursts = append(bursts, lat)
	}
	return bursts, nil
}

// b12Burst creates a Deployment of n pause pods spread over the nodes and
// returns each pod's created → Running latency as a watch sees it.
func b12Burst(ctx context.Context, c *kcluster.Cluster, kc kubernetes.Interface, ns string, n int) ([]time.Duration, error) {
	if _, err := c.KubectlStdin(ctx, fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n", ns), "apply", "-f", "-"); err != nil {
		return nil, err
	}
	var mu sync.Mutex
	seen, running := map[string]time.Time{}, map[string]time.Duration{}
	// observe records a pod's first sight and its first sight Running; it
	// reports whether every pod is Running.
	observe := func(p *corev1.Pod) bool {
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		if _, ok := seen[p.Name]; !ok {
			seen[p.Name] = now
		}
		if _, ok := running[p.Name]; !ok && p.Status.Phase == corev1.PodRunning {
			running[p.Name] = now.Sub(seen[p.Name])
		}
		return len(running) == n
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	watching := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- watchPods(wctx, kc, ns, watching, observe) }()
	<-watching
	if _, err := c.KubectlStdin(ctx, kcluster.BurstDeployment(ns, n), "apply", "-f", "-"); err != nil {
		cancel()
		<-done
		return nil, err
	}
	werr := <-done
	mu.Lock()
	lat := make([]time.Duration, 0, len(running))
	for _, d := range running {
		lat = append(lat, d)
	}
	mu.Unlock()
	if _, err := c.Kubectl(ctx, "delete", "namespace", ns, "--wait=true", "--timeout=5m"); err != nil {
		return nil, err
	}
	if len(lat) != n {
		return nil, fmt.Errorf("%d of %d pods Running within 5 minutes (watch: %v)", len(lat), n, werr)
	}
	return lat, nil
}

// percentile is the q-quantile of ds (nearest rank).
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// watchPods watches the pods of ns, closing watching once the first watch
// is established, and hands each pod to observe until it reports
// completion (nil) or ctx ends. A watch the server closes is re-opened.
func watchPods(ctx context.Context, kc kubernetes.Interface, ns string, watching chan<- struct{}, observe func(*corev1.Pod) bool) error {
	first := true
	for {
		w, err := kc.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
		if first {
			close(watching)
			first = false
		}
		if err != nil {
			return fmt.Errorf("watch pods: %w", err)
		}
		for ev := range w.ResultChan() {
			switch o := ev.Object.(type) {
			case *corev1.Pod:
				if ev.Type != watch.Deleted && observe(o) {
					w.Stop()
					return nil
				}
			case *metav1.Status:
				fmt.Fprintf(os.Stderr, "B12: watch %s: %s\n", ns, o.Message)
			}
		}
		w.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond): // the server closed it: re-open
		}
	}
}
