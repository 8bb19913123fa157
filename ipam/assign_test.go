package ipam_test

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/gingham-net/gingham/ipam"
)

// TestFourNodesConcurrent is the acceptance test: 4 nodes × 250
// concurrent allocations from one /22 pool with blockSize 26.
func TestFourNodesConcurrent(t *testing.T) {
	ctx, store := setup(t)
	pool(t, "p", "10.0.0.0/22", 26)
	const nodes, perNode = 4, 250
	start := time.Now()

	type result struct {
		node, handle string
		addr         netip.Addr
		err          error
	}
	results := make(chan result, nodes*perNode)
	var wg sync.WaitGroup
	allocs := make([]*ipam.Allocator, nodes)
	for n := range nodes {
		allocs[n] = ipam.New(store, ipam.Options{})
		for i := range perNode {
			wg.Go(func() {
				r := result{node: fmt.Sprintf("node-%d", n), handle: fmt.Sprintf("k8s-pod-network.n%d-c%d", n, i)}
				r.addr, r.err = allocs[n].Assign(ctx, ipam.AssignRequest{Handle: r.handle, Node: r.node})
				results <- r
			})
		}
	}
	wg.Wait()
	close(results)

	byAddr := map[netip.Addr]string{}
	perNodeAddrs := map[string][]netip.Addr{}
	for r := range results {
		if r.err != nil {
			t.Fatalf("%s on %s: %v", r.handle, r.node, r.err)
		}
		if prev, dup := byAddr[r.addr]; dup {
			t.Fatalf("address %s given to %s and %s", r.addr, prev, r.handle)
		}
		byAddr[r.addr] = r.handle
		perNodeAddrs[r.node] = append(perNodeAddrs[r.node], r.addr)
	}
	if len(byAddr) != nodes*perNode {
		t.Fatalf("%d distinct addresses, want %d", len(byAddr), nodes*perNode)
	}
	st := readState(t, ctx, store)
	checkBlocksOwnedOnce(t, st)
	if len(st.blocks) != 16 {
		t.Errorf("%d blocks claimed, want all 16 of the /22", len(st.blocks))
	}
	if len(st.allocs) != nodes*perNode || len(st.handles) != nodes*perNode {
		t.Errorf("datastore holds %d allocations and %d handles, want %d each", len(st.allocs), len(st.handles), nodes*perNode)
	}
	// 16 blocks of 64 for 4×250: at least one node must have borrowed.
	borrowed := 0
	for n := range nodes {
		name := fmt.Sprintf("node-%d", n)
		b, err := allocs[n].BorrowedAddrs(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		affine, err := allocs[n].AffineBlocks(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		inAffine := 0
		for _, a := range perNodeAddrs[name] {
			for _, blk := range affine {
				if blk.Contains(a) {
					inAffine++
				}
			}
		}
		if inAffine+len(b) != perNode {
			t.Errorf("%s: %d addresses in its %d blocks + %d borrowed != %d", name, inAffine, len(affine), len(b), perNode)
		}
		borrowed += len(b)
	}
	t.Logf("%d addresses borrowed during the burst", borrowed)
	// Every block is claimed now: a fifth node can only borrow, and once
	// the pool is full it gets ErrPoolExhausted.
	late := ipam.New(store, ipam.Options{})
	for i := range 1024 - nodes*perNode {
		h := fmt.Sprintf("k8s-pod-network.late-%d", i)
		addr, err := late.Assign(ctx, ipam.AssignRequest{Handle: h, Node: "node-late"})
		if err != nil {
			t.Fatalf("late allocation %d: %v", i, err)
		}
		if _, dup := byAddr[addr]; dup {
			t.Fatalf("address %s given twice", addr)
		}
		byAddr[addr] = h
	}
	lateBorrowed, err := late.BorrowedAddrs(ctx, "node-late")
	if err != nil || len(lateBorrowed) != 1024-nodes*perNode {
		t.Fatalf("node-late borrowed %d addresses (%v), want %d", len(lateBorrowed), err, 1024-nodes*perNode)
	}
	if blocks, _ := late.AffineBlocks(ctx, "node-late"); len(blocks) != 0 {
		t.Fatalf("node-late claimed blocks %v from a fully claimed pool", blocks)
	}
	if _, err := late.Assign(ctx, ipam.AssignRequest{Handle: "k8s-pod-network.one-too-many", Node: "node-late"}); !errors.Is(err, ipam.ErrPoolExhausted) {
		t.Fatalf("allocation from a full pool: %v, want ErrPoolExhausted", err)
	}
	t.Logf("assigned in %v", time.Since(start))

	var rel sync.WaitGroup
	errs := make(chan error, nodes*perNode)
	for addr, handle := range byAddr {
		n := 0
		fmt.Sscanf(handle, "k8s-pod-network.n%d-", &n) // late-* ones: allocator 0
		rel.Go(func() {
			if err := allocs[n].ReleaseByHandle(ctx, handle); err != nil {
				errs <- fmt.Errorf("release %s (%s): %w", handle, addr, err)
			}
		})
	}
	rel.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st = readState(t, ctx, store)
	if len(st.allocs) != 0 || len(st.handles) != 0 {
		t.Fatalf("after releasing everything: %d allocations and %d handles left", len(st.allocs), len(st.handles))
	}
}

func TestAssignIsIdempotentPerHandle(t *testing.T) {
	ctx, store := setup(t)
	pool(t, "p", "10.1.0.0/24", 26)
	a := ipam.New(store, ipam.Options{})
	req := ipam.AssignRequest{Handle: "k8s-pod-network.abc", Node: "n1", Attrs: map[string]string{ipam.AttrPodName: "p", ipam.AttrNamespace: "default"}}
	first, reused, err := a.AssignOrReuse(ctx, req)
	if err != nil || reused {
		t.Fatalf("first AssignOrReuse = %s, reused %v, %v; want a new address", first, reused, err)
	}
	for range 3 {
		again, reused, err := a.AssignOrReuse(ctx, req)
		if err != nil || again != first || !reused {
			t.Fatalf("repeated AssignOrReuse = %s, reused %v, %v; want %s reused", again, reused, err, first)
		}
	}
	other, err := a.Assign(ctx, ipam.AssignRequest{Handle: "k8s-pod-network.def", Node: "n1"})
	if err != nil || other == first {
		t.Fatalf("second handle got %s, %v (first %s)", other, err, first)
	}
	al, err := a.AllocationOf(ctx, first)
	if err != nil || al.Handle != req.Handle || al.Attrs[ipam.AttrPodName] != "p" || al.Node() != "n1" {
		t.Fatalf("AllocationOf(%s) = %+v, %v", first, al, err)
	}
	if err := a.ReleaseByHandle(ctx, req.Handle); err != nil {
		t.Fatal(err)
	}
	if err := a.ReleaseByHandle(ctx, req.Handle); err != nil {
		t.Fatalf("second release of the same handle: %v", err)
	}
	if _, err := a.AllocationOf(ctx, first); !errors.Is(err, ipam.ErrNotFound) {
		t.Fatalf("after release AllocationOf = %v, want ErrNotFound", err)
	}
	// A late release of the old allocation must not free the re-used
	// address: exhaust the FIFO so first comes back.
	for i := range 64 {
		if _, err := a.Assign(ctx, ipam.AssignRequest{Handle: fmt.Sprintf("k8s-pod-network.fill%d", i), Node: "n1"}); err != nil {
			t.Fatal(err)
		}
	}
	now, err := a.AllocationOf(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.ReleaseAllocation(ctx, al); !errors.Is(err, ipam.ErrStaleRelease) {
		t.Fatalf("late release of %s (seq %d, now held by %s seq %d) = %v, want ErrStaleRelease", first, al.Sequence, now.Handle, now.Sequence, err)
	}
	if _, err := a.AllocationOf(ctx, first); err != nil {
		t.Fatalf("re-used address freed by a late release: %v", err)
	}
}
