package ipam

import (
	"errors"
	"net/netip"
	"testing"

	v1 "github.com/gingham-net/gingham/api/v1"
)

func TestBlockName(t *testing.T) {
	tests := []struct {
		name  string
		block string
		want  string
	}{
		{"v4", "10.0.0.64/26", "10-0-0-64-26"},
		{"v4 unmasked input", "10.0.0.70/26", "10-0-0-64-26"},
		{"v6", "fd00::40/122", "fd00--40-122"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := BlockName(netip.MustParsePrefix(tt.block)); got != tt.want {
				t.Errorf("BlockName(%s) = %s, want %s", tt.block, got, tt.want)
			}
		})
	}
}

func TestOrdinalsRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		block string
		ord   int
		addr  string
	}{
		{"first v4", "10.0.1.0/26", 0, "10.0.1.0"},
		{"last v4", "10.0.1.0/26", 63, "10.0.1.63"},
		{"across octet", "10.0.0.0/22", 300, "10.0.1.44"},
		{"v6", "fd00::1000/116", 4095, "fd00::1fff"},
		{"v6 carry", "fd00:0:0:0:ffff:ffff:ffff:ff00/120", 255, "fd00::ffff:ffff:ffff:ffff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := netip.MustParsePrefix(tt.block)
			if got := AddrAt(b, tt.ord); got != netip.MustParseAddr(tt.addr) {
				t.Fatalf("AddrAt(%s, %d) = %s, want %s", b, tt.ord, got, tt.addr)
			}
			ord, ok := Ordinal(b, netip.MustParseAddr(tt.addr))
			if !ok || ord != tt.ord {
				t.Fatalf("Ordinal(%s, %s) = %d, %v; want %d", b, tt.addr, ord, ok, tt.ord)
			}
		})
	}
	if _, ok := Ordinal(netip.MustParsePrefix("10.0.0.0/26"), netip.MustParseAddr("10.0.0.64")); ok {
		t.Error("Ordinal accepted an address outside the block")
	}
}

func TestBlockOrderIsSeededPermutation(t *testing.T) {
	tests := []struct {
		name      string
		pool      string
		blockSize int
		wantN     int
	}{
		{"/22 in /26", "10.0.0.0/22", 26, 16},
		{"pool is one block", "10.0.0.0/26", 26, 1},
		{"/16 in /26", "10.1.0.0/16", 26, 1024},
		{"v6 /112 in /122", "fd00::/112", 122, 1024},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool := netip.MustParsePrefix(tt.pool)
			firsts := map[netip.Prefix]bool{}
			for _, node := range []string{"n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8"} {
				seen := map[netip.Prefix]bool{}
				var order []netip.Prefix
				for b := range BlockOrder(pool, tt.blockSize, node) {
					if seen[b] || !pool.Contains(b.Addr()) || b.Bits() != tt.blockSize || b.Masked() != b {
						t.Fatalf("node %s: bad or repeated block %s", node, b)
					}
					seen[b] = true
					order = append(order, b)
				}
				if len(order) != tt.wantN {
					t.Fatalf("node %s: %d blocks, want %d", node, len(order), tt.wantN)
				}
				again := []netip.Prefix{}
				for b := range BlockOrder(pool, tt.blockSize, node) {
					again = append(again, b)
				}
				if again[0] != order[0] || again[len(again)-1] != order[len(order)-1] {
					t.Fatalf("node %s: order not deterministic", node)
				}
				firsts[order[0]] = true
			}
			if tt.wantN >= 16 && len(firsts) < 4 {
				t.Errorf("8 nodes start at only %d distinct blocks; the order is not spread by node", len(firsts))
			}
		})
	}
}

// TestBlockState walks one block through assignments and releases; each row
// is a step on the same block.
func TestBlockState(t *testing.T) {
	cidr := netip.MustParsePrefix("10.0.0.0/30")
	b := newBlock(cidr, "n1", testTime)
	seq := func(s uint64) *uint64 { return &s }
	steps := []struct {
		name    string
		do      func() (int, error)
		wantOrd int
		wantErr error
		free    int
	}{
		{"assign a", func() (int, error) { return mustAssign(t, b, "a") }, 0, nil, 3},
		{"assign b", func() (int, error) { return mustAssign(t, b, "b") }, 1, nil, 2},
		{"release a with wrong handle", func() (int, error) { return 0, releaseOrdinal(&b.Spec, 0, "b", nil) }, 0, ErrStaleRelease, 2},
		{"release a with wrong seq", func() (int, error) { return 0, releaseOrdinal(&b.Spec, 0, "a", seq(7)) }, 0, ErrStaleRelease, 2},
		{"release a", func() (int, error) { return 0, releaseOrdinal(&b.Spec, 0, "a", seq(0)) }, 0, nil, 3},
		{"release a again is a no-op", func() (int, error) { return 0, releaseOrdinal(&b.Spec, 0, "a", seq(0)) }, 0, nil, 3},
		{"assign c takes FIFO head, not a's", func() (int, error) { return mustAssign(t, b, "c") }, 2, nil, 2},
		{"assign d", func() (int, error) { return mustAssign(t, b, "d") }, 3, nil, 1},
		{"assign e reuses a's ordinal", func() (int, error) { return mustAssign(t, b, "e") }, 0, nil, 0},
		{"late release of a (seq 0) cannot free e", func() (int, error) { return 0, releaseOrdinal(&b.Spec, 0, "", seq(0)) }, 0, ErrStaleRelease, 0},
	}
	for _, s := range steps {
		ord, err := s.do()
		if !errors.Is(err, s.wantErr) {
			t.Fatalf("%s: err = %v, want %v", s.name, err, s.wantErr)
		}
		if err == nil && ord != s.wantOrd {
			t.Fatalf("%s: ordinal %d, want %d", s.name, ord, s.wantOrd)
		}
		if got := freeCount(&b.Spec); got != s.free {
			t.Fatalf("%s: %d free, want %d", s.name, got, s.free)
		}
		for ord, idx := range b.Spec.Allocations {
			if idx != nil && (*idx < 0 || *idx >= len(b.Spec.Attributes)) {
				t.Fatalf("%s: ordinal %d points at attribute %d of %d", s.name, ord, *idx, len(b.Spec.Attributes))
			}
		}
	}
	if _, ok := assignOrdinal(&b.Spec, "f", nil); ok {
		t.Fatal("assigned from a full block")
	}
	got := handleOrdinals(&b.Spec, "e")
	if len(got) != 1 || got[0] != 0 {
		t.Fatalf("handle e holds %v, want [0]", got)
	}
	if al, ok := allocationAt(cidr, &b.Spec, 0); !ok || al.Handle != "e" || al.Sequence != 4 || al.BlockNode != "n1" {
		t.Fatalf("allocation at 0 = %+v", al)
	}
}

func mustAssign(t *testing.T, b *v1.IPAMBlock, h string) (int, error) {
	t.Helper()
	ord, ok := assignOrdinal(&b.Spec, h, map[string]string{AttrNode: "n1"})
	if !ok {
		t.Fatalf("block full assigning %s", h)
	}
	return ord, nil
}

func TestObjectNames(t *testing.T) {
	tests := []struct {
		name, in, want string
		hashed         bool
	}{
		{"pod handle kept", "k8s-pod-network.0123abcd", "k8s-pod-network.0123abcd", false},
		{"tunnel handle kept", "ipip-tunnel-addr-node-1", "ipip-tunnel-addr-node-1", false},
		{"upper case hashed", "Net.ABC", "", true},
		{"underscore hashed", "net.abc_def", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := HandleName(tt.in)
			if tt.hashed {
				if got == tt.in || len(got) != 42 {
					t.Fatalf("HandleName(%q) = %q, want a hash name", tt.in, got)
				}
				return
			}
			if got != tt.want {
				t.Fatalf("HandleName(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
