package ipam_test

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"

	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/ipam"
)

// TestPoolChoice checks which pool an assignment comes from.
func TestPoolChoice(t *testing.T) {
	disabled := func(s *v1.IPPoolSpec) { s.Disabled = true }
	rackA := func(s *v1.IPPoolSpec) { s.NodeSelector = "rack == 'a'" }
	tunnelOnly := func(s *v1.IPPoolSpec) { s.AllowedUses = []v1.IPPoolAllowedUse{v1.UseTunnel} }
	workloadOnly := func(s *v1.IPPoolSpec) { s.AllowedUses = []v1.IPPoolAllowedUse{v1.UseWorkload} }
	tests := []struct {
		name    string
		pools   func(t *testing.T)
		req     ipam.AssignRequest
		want    string // pool CIDR the address must be in
		wantErr error
	}{
		{"disabled pool skipped", func(t *testing.T) {
			pool(t, "a-off", "10.50.0.0/24", 26, disabled)
			pool(t, "b-on", "10.51.0.0/24", 26)
		}, ipam.AssignRequest{}, "10.51.0.0/24", nil},
		{"nodeSelector matches labels", func(t *testing.T) {
			pool(t, "a-rack", "10.52.0.0/24", 26, rackA)
			pool(t, "b-any", "10.53.0.0/24", 26, disabled)
		}, ipam.AssignRequest{NodeLabels: map[string]string{"rack": "a"}}, "10.52.0.0/24", nil},
		{"nodeSelector excludes node", func(t *testing.T) {
			pool(t, "a-rack", "10.52.0.0/24", 26, rackA)
		}, ipam.AssignRequest{NodeLabels: map[string]string{"rack": "b"}}, "", ipam.ErrNoPools},
		{"tunnel-only pool not for workloads", func(t *testing.T) {
			pool(t, "a-tun", "10.54.0.0/24", 26, tunnelOnly)
			pool(t, "b-wl", "10.55.0.0/24", 26, workloadOnly)
		}, ipam.AssignRequest{}, "10.55.0.0/24", nil},
		{"tunnel address from tunnel pool", func(t *testing.T) {
			pool(t, "a-wl", "10.55.0.0/24", 26, workloadOnly)
			pool(t, "b-tun", "10.54.0.0/24", 26, tunnelOnly)
		}, ipam.AssignRequest{Use: v1.UseTunnel}, "10.54.0.0/24", nil},
		{"requested pool by name", func(t *testing.T) {
			pool(t, "a", "10.56.0.0/24", 26)
			pool(t, "b", "10.57.0.0/24", 26)
		}, ipam.AssignRequest{Pools: []string{"b"}}, "10.57.0.0/24", nil},
		{"requested pool by CIDR", func(t *testing.T) {
			pool(t, "a", "10.56.0.0/24", 26)
			pool(t, "b", "10.57.0.0/24", 26)
		}, ipam.AssignRequest{Pools: []string{"10.56.0.0/24"}}, "10.56.0.0/24", nil},
		{"requested pool disabled", func(t *testing.T) {
			pool(t, "a", "10.56.0.0/24", 26, disabled)
		}, ipam.AssignRequest{Pools: []string{"a"}}, "", ipam.ErrNoPools},
		{"requested pool missing", func(t *testing.T) {
			pool(t, "a", "10.56.0.0/24", 26)
		}, ipam.AssignRequest{Pools: []string{"zzz"}}, "", ipam.ErrNoPools},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, store := setup(t)
			tt.pools(t)
			req := tt.req
			req.Handle, req.Node = "net.x", "n1"
			addr, err := ipam.New(store, ipam.Options{}).Assign(ctx, req)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Assign = %s, %v; want error %v", addr, err, tt.wantErr)
			}
			if tt.want != "" && !netip.MustParsePrefix(tt.want).Contains(addr) {
				t.Fatalf("Assign = %s, want an address in %s", addr, tt.want)
			}
			var pe *ipam.PoolError
			if len(req.Pools) > 0 && err != nil && !errors.As(err, &pe) {
				t.Fatalf("error for a requested pool is %T, want *ipam.PoolError", err)
			}
		})
	}
}

func TestStrictAffinityForbidsBorrowing(t *testing.T) {
	ctx, store := setup(t)
	pool(t, "p", "10.60.0.0/26", 27)
	ipamConfig(t, true)
	n1, n2 := ipam.New(store, ipam.Options{}), ipam.New(store, ipam.Options{})
	for i := range 32 {
		if _, err := n1.Assign(ctx, ipam.AssignRequest{Handle: fmt.Sprintf("net.a%d", i), Node: "n1"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := n2.Assign(ctx, ipam.AssignRequest{Handle: "net.b0", Node: "n2"}); err != nil {
		t.Fatalf("n2 should claim the second block: %v", err)
	}
	// n1's block is full and the only other block is n2's: no borrowing.
	if _, err := n1.Assign(ctx, ipam.AssignRequest{Handle: "net.a-extra", Node: "n1"}); !errors.Is(err, ipam.ErrPoolExhausted) {
		t.Fatalf("strict affinity: %v, want ErrPoolExhausted", err)
	}
}

func TestTunnelAddrAndPoolRelease(t *testing.T) {
	ctx, store := setup(t)
	pool(t, "p", "10.61.0.0/24", 26)
	a := ipam.New(store, ipam.Options{})
	tun, err := a.AssignTunnelAddr(ctx, "n1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := a.AssignTunnelAddr(ctx, "n1", nil); err != nil || again != tun {
		t.Fatalf("second AssignTunnelAddr = %s, %v; want %s", again, err, tun)
	}
	al, err := a.AllocationOf(ctx, tun)
	if err != nil || al.Handle != "ipip-tunnel-addr-n1" || al.Attrs[ipam.AttrType] != ipam.TypeIPIPTunnel {
		t.Fatalf("tunnel allocation = %+v, %v", al, err)
	}
	// Releasing the pool's affinities: the block in use loses its
	// affinity but keeps its address; once empty it can be deleted.
	blocks, _ := a.AffineBlocks(ctx, "n1")
	if len(blocks) != 1 {
		t.Fatalf("n1 blocks %v, want 1", blocks)
	}
	if err := a.ReleasePoolAffinities(ctx, netip.MustParsePrefix("10.61.0.0/24")); err != nil {
		t.Fatal(err)
	}
	if blocks, _ := a.AffineBlocks(ctx, "n1"); len(blocks) != 0 {
		t.Fatalf("after ReleasePoolAffinities n1 still has %v", blocks)
	}
	if _, err := a.AllocationOf(ctx, tun); err != nil {
		t.Fatalf("pool release freed an address in use: %v", err)
	}
	if err := a.ReleaseByHandle(ctx, ipam.TunnelHandle("n1")); err != nil {
		t.Fatal(err)
	}
	if err := a.ReleaseEmptyBlock(ctx, "", ipam.BlockOf(tun, 26)); err != nil {
		t.Fatalf("release the orphaned empty block: %v", err)
	}
	if st := readState(t, ctx, store); len(st.blocks)+len(st.affs)+len(st.handles) != 0 {
		t.Fatalf("left %d blocks, %d affinities, %d handles", len(st.blocks), len(st.affs), len(st.handles))
	}
}

// TestGCKeepsLastBlock: empty blocks are released after two passes, except
// a live node's last one.
func TestGCKeepsLastBlock(t *testing.T) {
	t.Log("reliability: does: empties a node's two blocks and checks the GC releases the empty one only on its second pass and never the live node's last block")
	ctx, store := setup(t)
	pool(t, "p", "10.62.0.0/25", 27)
	node(t, "n1", nil)
	a := ipam.New(store, ipam.Options{})
	for i := range 33 { // 32 fill the first /27, one more claims a second
		if _, err := a.Assign(ctx, ipam.AssignRequest{Handle: fmt.Sprintf("net.x%d", i), Node: "n1"}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 33 {
		if err := a.ReleaseByHandle(ctx, fmt.Sprintf("net.x%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	gc := ipam.NewGC(store, staleCluster{Cluster: clusterOf()}, env.Kube, "n1", nil, ipam.GCOptions{})
	for pass, want := range []int{0, 1, 0} {
		res, err := gc.Sync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.BlocksReleased) != want {
			t.Fatalf("pass %d released %v, want %d blocks", pass+1, res.BlocksReleased, want)
		}
	}
	blocks, _ := a.AffineBlocks(ctx, "n1")
	if len(blocks) != 1 {
		t.Fatalf("n1 keeps %v, want its last block", blocks)
	}
	t.Logf("reliability: figure: blocks released per pass: 0, 1, 0; node keeps %d block", len(blocks))
}
