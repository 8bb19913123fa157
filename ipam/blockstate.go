package ipam

import (
	"fmt"
	"maps"
	"net/netip"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/gingham-net/gingham/api/v1"
)

// Keys of an allocation's owner attributes (AllocationAttribute.Secondary).
const (
	AttrNode      = "node"
	AttrPodName   = "pod"
	AttrNamespace = "namespace"
	AttrType      = "type"
	AttrTimestamp = "timestamp"
)

// Values of AttrType.
const (
	TypeWorkload   = "workload"
	TypeIPIPTunnel = "ipipTunnelAddress"
)

const hostAffinityPrefix = "host:"

// Allocation is one allocated address, as read from its block.
type Allocation struct {
	Addr netip.Addr `json:"addr"`
	// Block holding the address and the node it is affine to ("" if none).
	Block     netip.Prefix `json:"block"`
	BlockNode string       `json:"blockNode,omitempty"`
	// Handle that owns the address ("" when the block records none).
	Handle string `json:"handle,omitempty"`
	// Sequence is the block's sequence number when the address was
	// allocated; releasing with it fails if the address was re-used since.
	Sequence uint64            `json:"sequence"`
	Attrs    map[string]string `json:"attrs,omitempty"`
}

// Node returns the node the allocation was made for (its node attribute).
func (a Allocation) Node() string { return a.Attrs[AttrNode] }

// Borrowed reports whether the address lives in a block affine to another
// node than the one it was allocated for.
func (a Allocation) Borrowed() bool { return a.Node() != "" && a.BlockNode != a.Node() }

// newBlock returns an empty block affine to node.
func newBlock(cidr netip.Prefix, node string, now time.Time) *v1.IPAMBlock {
	size := BlockSizeOf(cidr)
	aff := hostAffinityPrefix + node
	t := metav1.NewTime(now)
	b := &v1.IPAMBlock{Spec: v1.IPAMBlockSpec{
		CIDR:              cidr.String(),
		Affinity:          &aff,
		AffinityClaimTime: &t,
		Allocations:       make([]*int, size),
		Unallocated:       make([]int, size),
		Attributes:        []v1.AllocationAttribute{},
	}}
	b.Name = BlockName(cidr)
	for i := range size {
		b.Spec.Unallocated[i] = i
	}
	return b
}

// blockCIDR parses and sanity-checks a block read from the store.
func blockCIDR(b *v1.IPAMBlock) (netip.Prefix, error) {
	cidr, err := netip.ParsePrefix(b.Spec.CIDR)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("block %s: bad cidr %q: %w", b.Name, b.Spec.CIDR, ErrInvalid)
	}
	if len(b.Spec.Allocations) != BlockSizeOf(cidr) {
		return netip.Prefix{}, fmt.Errorf("block %s: %d allocation slots for %d addresses: %w", cidr, len(b.Spec.Allocations), BlockSizeOf(cidr), ErrInvalid)
	}
	return cidr, nil
}

// blockNode returns the node a block is affine to, or "".
func blockNode(b *v1.IPAMBlockSpec) string {
	if b.Affinity == nil {
		return ""
	}
	n, ok := strings.CutPrefix(*b.Affinity, hostAffinityPrefix)
	if !ok {
		return ""
	}
	return n
}

func freeCount(b *v1.IPAMBlockSpec) int { return len(b.Unallocated) }

func isEmpty(b *v1.IPAMBlockSpec) bool { return len(b.Unallocated) == len(b.Allocations) }

// assignOrdinal takes the head of the FIFO free list for handle. It reports
// false when the block is full.
func assignOrdinal(b *v1.IPAMBlockSpec, handle string, attrs map[string]string) (int, bool) {
	if len(b.Unallocated) == 0 {
		return 0, false
	}
	ord := b.Unallocated[0]
	b.Unallocated = b.Unallocated[1:]
	h := handle
	b.Attributes = append(b.Attributes, v1.AllocationAttribute{HandleID: &h, Secondary: maps.Clone(attrs)})
	idx := len(b.Attributes) - 1
	b.Allocations[ord] = &idx
	if b.SequenceNumberForAllocation == nil {
		b.SequenceNumberForAllocation = map[string]uint64{}
	}
	b.SequenceNumberForAllocation[strconv.Itoa(ord)] = b.SequenceNumber
	b.SequenceNumber++
	return ord, true
}

// allocationAt describes the allocation at ord, or false if it is free.
func allocationAt(cidr netip.Prefix, b *v1.IPAMBlockSpec, ord int) (Allocation, bool) {
	if ord < 0 || ord >= len(b.Allocations) || b.Allocations[ord] == nil {
		return Allocation{}, false
	}
	a := Allocation{Addr: AddrAt(cidr, ord), Block: cidr, BlockNode: blockNode(b), Sequence: b.SequenceNumberForAllocation[strconv.Itoa(ord)]}
	if idx := *b.Allocations[ord]; idx >= 0 && idx < len(b.Attributes) {
		attr := b.Attributes[idx]
		if attr.HandleID != nil {
			a.Handle = *attr.HandleID
		}
		a.Attrs = maps.Clone(attr.Secondary)
	}
	return a, true
}

// allocations lists every allocation of a block.
func allocations(cidr netip.Prefix, b *v1.IPAMBlockSpec) []Allocation {
	var out []Allocation
	for ord := range b.Allocations {
		if a, ok := allocationAt(cidr, b, ord); ok {
			out = append(out, a)
		}
	}
	return out
}

// handleOrdinals returns the ordinals held by handle.
func handleOrdinals(b *v1.IPAMBlockSpec, handle string) []int {
	var out []int
	for ord, idx := range b.Allocations {
		if idx != nil && *idx >= 0 && *idx < len(b.Attributes) {
			if h := b.Attributes[*idx].HandleID; h != nil && *h == handle {
				out = append(out, ord)
			}
		}
	}
	return out
}

// releaseOrdinal frees ord if it is still the allocation the caller means:
// held by handle (when handle is set) with sequence number seq (when seq is
// set). A free ordinal is not an error (release is idempotent).
func releaseOrdinal(b *v1.IPAMBlockSpec, ord int, handle string, seq *uint64) error {
	if ord < 0 || ord >= len(b.Allocations) {
		return fmt.Errorf("ordinal %d outside the block: %w", ord, ErrInvalid)
	}
	idx := b.Allocations[ord]
	if idx == nil {
		return nil
	}
	key := strconv.Itoa(ord)
	if seq != nil && b.SequenceNumberForAllocation[key] != *seq {
		return fmt.Errorf("ordinal %d has sequence %d, not %d: %w", ord, b.SequenceNumberForAllocation[key], *seq, ErrStaleRelease)
	}
	if handle != "" {
		if *idx < 0 || *idx >= len(b.Attributes) || b.Attributes[*idx].HandleID == nil || *b.Attributes[*idx].HandleID != handle {
			return fmt.Errorf("ordinal %d is not held by handle %s: %w", ord, handle, ErrStaleRelease)
		}
	}
	b.Allocations[ord] = nil
	delete(b.SequenceNumberForAllocation, key)
	b.Unallocated = append(b.Unallocated, ord)
	compactAttributes(b)
	return nil
}

// compactAttributes drops attributes no allocation points at.
func compactAttributes(b *v1.IPAMBlockSpec) {
	remap := map[int]int{}
	attrs := []v1.AllocationAttribute{}
	for ord, idx := range b.Allocations {
		if idx == nil {
			continue
		}
		n, ok := remap[*idx]
		if !ok {
			n = len(attrs)
			if *idx >= 0 && *idx < len(b.Attributes) {
				attrs = append(attrs, b.Attributes[*idx])
			} else {
				attrs = append(attrs, v1.AllocationAttribute{})
			}
			remap[*idx] = n
		}
		nn := n
		b.Allocations[ord] = &nn
	}
	b.Attributes = attrs
}
