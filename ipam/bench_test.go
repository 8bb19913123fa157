package ipam_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/ipam"
)

// report adds p50/p99 of the samples (milliseconds) to the benchmark.
func report(b *testing.B, name string, samples []time.Duration) {
	b.Helper()
	if len(samples) == 0 {
		return
	}
	slices.Sort(samples)
	at := func(q float64) float64 {
		return float64(samples[min(len(samples)-1, int(q*float64(len(samples))))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), name+"-p50-ms")
	b.ReportMetric(at(0.99), name+"-p99-ms")
}

// BenchmarkAssignRelease: one pod at a time on one node, allocate then
// release, against the real API server.
func BenchmarkAssignRelease(b *testing.B) {
	ctx, store := setup(b)
	pool(b, "p", "10.70.0.0/22", 26)
	a := ipam.New(store, ipam.Options{})
	var assign, release []time.Duration
	b.ResetTimer()
	for i := range b.N {
		h := fmt.Sprintf("net.c%d", i)
		t0 := time.Now()
		if _, err := a.Assign(ctx, ipam.AssignRequest{Handle: h, Node: "n1"}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := a.ReleaseByHandle(ctx, h); err != nil {
			b.Fatal(err)
		}
		assign, release = append(assign, t1.Sub(t0)), append(release, time.Since(t1))
	}
	b.StopTimer()
	report(b, "assign", assign)
	report(b, "release", release)
}

// burst allocates perNode addresses on each of nodes concurrently and
// returns each allocation's latency; releases happen untimed.
func burst(b *testing.B, ctx context.Context, store ipam.Store, round, nodes, perNode int) []time.Duration {
	b.Helper()
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	allocs := make([]*ipam.Allocator, nodes)
	for n := range nodes {
		allocs[n] = ipam.New(store, ipam.Options{})
		for i := range perNode {
			wg.Go(func() {
				t0 := time.Now()
				_, err := allocs[n].Assign(ctx, ipam.AssignRequest{Handle: fmt.Sprintf("net.r%d-n%d-%d", round, n, i), Node: fmt.Sprintf("n%d", n)})
				if err != nil {
					b.Error(err)
				}
				mu.Lock()
				lat = append(lat, time.Since(t0))
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	b.StopTimer()
	for n := range nodes {
		for i := range perNode {
			wg.Go(func() {
				if err := allocs[n].ReleaseByHandle(ctx, fmt.Sprintf("net.r%d-n%d-%d", round, n, i)); err != nil {
					b.Error(err)
				}
			})
		}
	}
	wg.Wait()
	b.StartTimer()
	return lat
}

// BenchmarkBurst110OneNode: 110 pods (the kubelet's default maximum) start
// at once on one node. ns/op is the whole burst.
func BenchmarkBurst110OneNode(b *testing.B) {
	ctx, store := setup(b)
	pool(b, "p", "10.71.0.0/22", 26)
	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		lat = append(lat, burst(b, ctx, store, i, 1, 110)...)
	}
	b.StopTimer()
	report(b, "pod", lat)
}

// BenchmarkFourNodes250: 4 nodes × 250 concurrent allocations from one /22
// with blockSize 26. ns/op is the whole burst.
func BenchmarkFourNodes250(b *testing.B) {
	ctx, store := setup(b)
	pool(b, "p", "10.72.0.0/22", 26)
	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		lat = append(lat, burst(b, ctx, store, i, 4, 250)...)
	}
	b.StopTimer()
	report(b, "pod", lat)
}

// BenchmarkReferenceBlockCAS is the reference for BenchmarkAssignRelease:
// the least an address can cost, one read and one compare-and-swap write of
// a block, with no pools, affinities or handles.
func BenchmarkReferenceBlockCAS(b *testing.B) {
	ctx, store := setup(b)
	blk := &v1.IPAMBlock{Spec: v1.IPAMBlockSpec{CIDR: "10.73.0.0/26", Allocations: make([]*int, 64), Unallocated: []int{}, Attributes: []v1.AllocationAttribute{}}}
	blk.Name = ipam.BlockName(netip.MustParsePrefix(blk.Spec.CIDR))
	if err := store.Create(ctx, blk); err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		var cur v1.IPAMBlock
		if err := store.Get(ctx, blk.Name, &cur); err != nil {
			b.Fatal(err)
		}
		cur.Spec.SequenceNumber++
		if err := store.Update(ctx, &cur); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	report(b, "cas", lat)
}
