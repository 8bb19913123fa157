package ipam

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"

	"go.uber.org/zap"

	"github.com/gingham-net/gingham/api/model"
	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/internal/logging"
)

// maxClaimRaces bounds how many blocks one assignment may lose to other
// nodes before giving up on claiming.
const maxClaimRaces = 32

// nodeAffinities lists node's BlockAffinities, sorted by CIDR.
func (a *Allocator) nodeAffinities(ctx context.Context, node string) ([]v1.BlockAffinity, error) {
	var list v1.BlockAffinityList
	if err := a.store.List(ctx, &list, map[string]string{LabelNodeHash: NodeHash(node)}); err != nil {
		return nil, fmt.Errorf("list affinities of node %s: %w", node, err)
	}
	out := slices.DeleteFunc(list.Items, func(x v1.BlockAffinity) bool { return x.Spec.Node != node })
	slices.SortFunc(out, func(x, y v1.BlockAffinity) int { return cmp.Compare(x.Spec.CIDR, y.Spec.CIDR) })
	return out, nil
}

func (a *Allocator) listBlocks(ctx context.Context) ([]v1.IPAMBlock, error) {
	var list v1.IPAMBlockList
	if err := a.store.List(ctx, &list, nil); err != nil {
		return nil, fmt.Errorf("list blocks: %w", err)
	}
	return list.Items, nil
}

// assignFromNewBlock claims a free block of the pools for node and
// allocates from it.
// Blocks in mine (the node's affinities, already tried) are skipped.
func (a *Allocator) assignFromNewBlock(ctx context.Context, pools []model.Pool, mine map[netip.Prefix]bool, handle string, attrs map[string]string, node string) (netip.Addr, bool, error) {
	blocks, err := a.listBlocks(ctx)
	if err != nil {
		return netip.Addr{}, false, err
	}
	taken := map[netip.Prefix]string{} // block -> affine node
	for i := range blocks {
		if cidr, err := netip.ParsePrefix(blocks[i].Spec.CIDR); err == nil {
			taken[cidr] = blockNode(&blocks[i].Spec)
		}
	}
	for cidr := range mine {
		taken[cidr] = "?"
	}
	for range maxClaimRaces {
		cidr, ok := unclaimedBlock(pools, node, taken)
		if !ok {
			return netip.Addr{}, false, nil
		}
		taken[cidr] = "?"
		err := a.claim(ctx, cidr, node)
		if errors.Is(err, errClaimConflict) {
			a.log.Debug("lost block claim", zap.String(logging.KeyBlock, cidr.String()), zap.String(logging.KeyNode, node))
			continue
		}
		if err != nil {
			return netip.Addr{}, false, err
		}
		addr, ok, err := a.assignFromBlock(ctx, cidr, handle, attrs, node)
		if err != nil || ok {
			return addr, ok, err
		}
	}
	return netip.Addr{}, false, nil
}

// unclaimedBlock returns the first block, in node's seeded order, that does
// not exist yet (or exists affine to node without an affinity object).
func unclaimedBlock(pools []model.Pool, node string, taken map[netip.Prefix]string) (netip.Prefix, bool) {
	for _, p := range pools {
		// Once more blocks were visited than exist, a free one was found or
		// none is left: the walk is a permutation.
		budget := 1
		for b := range taken {
			if p.CIDR.Contains(b.Addr()) {
				budget++
			}
		}
		for cidr := range BlockOrder(p.CIDR, p.BlockSize, node) {
			owner, exists := taken[cidr]
			if !exists || owner == node {
				return cidr, true
			}
			if budget--; budget == 0 {
				break
			}
		}
	}
	return netip.Prefix{}, false
}

// claim makes cidr node's block in two phases: a pending BlockAffinity,
// then the block itself (whose creation decides races), then the affinity
// confirmed. errClaimConflict means another node has the block.
func (a *Allocator) claim(ctx context.Context, cidr netip.Prefix, node string) error {
	aff := v1.BlockAffinity{Spec: v1.BlockAffinitySpec{State: v1.AffinityPending, Node: node, Type: "host", CIDR: cidr.String()}}
	aff.Name = AffinityName(node, cidr)
	aff.Labels = map[string]string{LabelNodeHash: NodeHash(node)}
	err := a.store.Create(ctx, &aff)
	if errors.Is(err, ErrAlreadyExists) {
		aff = v1.BlockAffinity{}
		if err := a.store.Get(ctx, AffinityName(node, cidr), &aff); err != nil {
			return fmt.Errorf("claim block %s: read affinity: %w", cidr, err)
		}
		if aff.Spec.State == v1.AffinityPendingDeletion {
			return fmt.Errorf("claim block %s: affinity being released: %w", cidr, errClaimConflict)
		}
	} else if err != nil {
		return fmt.Errorf("claim block %s: create pending affinity: %w", cidr, err)
	}
	return a.completeClaim(ctx, &aff, cidr)
}

// completeClaim runs the claim's second and third phase for a pending (or
// confirmed) affinity of ours: create the block, confirm the affinity.
func (a *Allocator) completeClaim(ctx context.Context, aff *v1.BlockAffinity, cidr netip.Prefix) error {
	node := aff.Spec.Node
	b := newBlock(cidr, node, a.now())
	err := a.store.Create(ctx, b)
	if errors.Is(err, ErrAlreadyExists) {
		var cur v1.IPAMBlock
		if err := a.store.Get(ctx, BlockName(cidr), &cur); err != nil {
			return fmt.Errorf("claim block %s: read block: %w", cidr, err)
		}
		if blockNode(&cur.Spec) != node {
			// Lost the race: withdraw our pending affinity.
			if err := a.store.Delete(ctx, aff); err != nil && !errors.Is(err, ErrNotFound) {
				a.log.Warn("withdraw losing affinity", zap.String(logging.KeyBlock, cidr.String()), zap.Error(err))
			}
			return fmt.Errorf("claim block %s: %w", cidr, errClaimConflict)
		}
	} else if err != nil {
		return fmt.Errorf("claim block %s: create block: %w", cidr, err)
	}
	if aff.Spec.State == v1.AffinityConfirmed {
		return nil
	}
	first := true
	return retryConflict(ctx, a.tries, "confirm affinity of "+cidr.String(), func() error {
		if !first {
			*aff = v1.BlockAffinity{}
			if err := a.store.Get(ctx, AffinityName(node, cidr), aff); err != nil {
				return fmt.Errorf("claim block %s: read affinity: %w", cidr, err)
			}
		}
		first = false
		switch aff.Spec.State {
		case v1.AffinityConfirmed:
			return nil
		case v1.AffinityPendingDeletion:
			return fmt.Errorf("claim block %s: affinity being released: %w", cidr, errClaimConflict)
		}
		aff.Spec.State = v1.AffinityConfirmed
		if err := a.store.Update(ctx, aff); err != nil {
			return fmt.Errorf("claim block %s: confirm affinity: %w", cidr, err)
		}
		return nil
	})
}

// reclaimMissingBlock handles a confirmed affinity whose block is gone: it
// sets the affinity back to pending (a compare-and-swap that fails if a
// release is under way) and completes the claim again.
func (a *Allocator) reclaimMissingBlock(ctx context.Context, aff *v1.BlockAffinity, cidr netip.Prefix) error {
	aff.Spec.State = v1.AffinityPending
	if err := a.store.Update(ctx, aff); errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
		return fmt.Errorf("re-claim block %s: %w", cidr, errClaimConflict)
	} else if err != nil {
		return fmt.Errorf("re-claim block %s: %w", cidr, err)
	}
	return a.completeClaim(ctx, aff, cidr)
}

// borrow takes a free address from any existing block of the pools,
// starting at a node-seeded position so nodes spread out.
func (a *Allocator) borrow(ctx context.Context, pools []model.Pool, handle string, attrs map[string]string, node string) (netip.Addr, bool, error) {
	blocks, err := a.listBlocks(ctx)
	if err != nil {
		return netip.Addr{}, false, err
	}
	var cands []netip.Prefix
	for i := range blocks {
		b := &blocks[i]
		cidr, err := netip.ParsePrefix(b.Spec.CIDR)
		if err != nil || b.Spec.Deleted || freeCount(&b.Spec) == 0 || !inPools(pools, cidr) {
			continue
		}
		cands = append(cands, cidr)
	}
	if len(cands) == 0 {
		return netip.Addr{}, false, nil
	}
	slices.SortFunc(cands, func(x, y netip.Prefix) int { return x.Addr().Compare(y.Addr()) })
	h := fnv.New32a()
	h.Write([]byte(node))
	start := int(h.Sum32() % uint32(len(cands)))
	for i := range cands {
		cidr := cands[(start+i)%len(cands)]
		addr, ok, err := a.assignFromBlock(ctx, cidr, handle, attrs, node)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil || ok {
			return addr, ok, err
		}
	}
	return netip.Addr{}, false, nil
}
