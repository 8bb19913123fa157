package ipam

import (
	"context"

	"fmt"
	"net/netip"
	"slices"

	v1 "github.com/gingham-net/gingham/api/v1"
)

// AffineBlocks returns the blocks confirmed as node's, sorted. The BGP side
// exports these as node's routes.
func (a *Allocator) AffineBlocks(ctx context.Context, node string) ([]netip.Prefix, error) {
	affs, err := a.nodeAffinities(ctx, node)
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, aff := range affs {
		if aff.Spec.State != v1.AffinityConfirmed {
			continue // pending claims are not routed
		}
		if cidr, err := netip.ParsePrefix(aff.Spec.CIDR); err == nil {
			out = append(out, cidr)
		}
	}
	slices.SortFunc(out, func(x, y netip.Prefix) int { return x.Addr().Compare(y.Addr()) })
	return out, nil
}

// BorrowedAddrs returns the addresses allocated for node that live in
// blocks affine to another node (or to none); BGP exports each as a /32.
func (a *Allocator) BorrowedAddrs(ctx context.Context, node string) ([]netip.Addr, error) {
	all, err := a.Allocations(ctx)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, al := range all {
		if al.Node() == node && al.Borrowed() {
			out = append(out, al.Addr)
		}
	}
	return out, nil
}

// Allocations lists every allocated address, sorted by address.
func (a *Allocator) Allocations(ctx context.Context) ([]Allocation, error) {
	blocks, err := a.listBlocks(ctx)
	if err != nil {
		return nil, err
	}
	var out []Allocation
	for i := range blocks {
		cidr, err := blockCIDR(&blocks[i])
		if err != nil {
			continue
		}
		out = append(out, allocations(cidr, &blocks[i].Spec)...)
	}
	slices.SortFunc(out, func(x, y Allocation) int { return x.Addr.Compare(y.Addr) })
	return out, nil
}

// AllocationOf describes who holds addr; ErrNotFound when nobody does.
func (a *Allocator) AllocationOf(ctx context.Context, addr netip.Addr) (Allocation, error) {
	blocks, err := a.listBlocks(ctx)
	if err != nil {
		return Allocation{}, err
	}
	for i := range blocks {
		cidr, err := blockCIDR(&blocks[i])
		if err != nil || !cidr.Contains(addr) {
			continue
		}
		ord, _ := Ordinal(cidr, addr)
		if al, ok := allocationAt(cidr, &blocks[i].Spec, ord); ok {
			return al, nil
		}
	}
	return Allocation{}, fmt.Errorf("%s is not allocated: %w", addr, ErrNotFound)
}
