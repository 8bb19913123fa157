package ipam

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	v1 "github.com/gingham-net/gingham/api/v1"
)

// ReleaseByHandle frees every address handle holds and deletes the handle.
// Releasing an unknown handle succeeds (CNI DEL is idempotent).
func (a *Allocator) ReleaseByHandle(ctx context.Context, handle string) error {
	unlock, err := a.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := a.releaseHandle(ctx, handle); err != nil {
		return fmt.Errorf("release handle %s: %w", handle, err)
	}
	return nil
}

func (a *Allocator) releaseHandle(ctx context.Context, handle string) error {
	return retryConflict(ctx, a.tries, "release handle "+handle, func() error {
		var h v1.IPAMHandle
		if err := a.store.Get(ctx, HandleName(handle), &h); errors.Is(err, ErrNotFound) {
			return nil
		} else if err != nil {
			return fmt.Errorf("read handle: %w", err)
		}
		for _, key := range slices.Sorted(maps.Keys(h.Spec.Block)) {
			cidr, err := netip.ParsePrefix(key)
			if err != nil {
				continue
			}
			if err := a.releaseInBlock(ctx, cidr, func(b *v1.IPAMBlockSpec) error {
				for _, ord := range handleOrdinals(b, handle) {
					if err := releaseOrdinal(b, ord, handle, nil); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				return err
			}
		}
		if err := a.store.Delete(ctx, &h); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("delete handle: %w", err)
		}
		return nil
	})
}

// releaseInBlock applies release to block cidr and writes it back
// (compare-and-swap, retried). A missing block has nothing to release.
func (a *Allocator) releaseInBlock(ctx context.Context, cidr netip.Prefix, release func(*v1.IPAMBlockSpec) error) error {
	return retryConflict(ctx, a.tries, "release in block "+cidr.String(), func() error {
		var b v1.IPAMBlock
		if err := a.store.Get(ctx, BlockName(cidr), &b); errors.Is(err, ErrNotFound) {
			return nil
		} else if err != nil {
			return fmt.Errorf("read block %s: %w", cidr, err)
		}
		if _, err := blockCIDR(&b); err != nil {
			return err
		}
		before := freeCount(&b.Spec)
		if err := release(&b.Spec); err != nil {
			return fmt.Errorf("release in block %s: %w", cidr, err)
		}
		if freeCount(&b.Spec) == before {
			return nil
		}
		if err := a.store.Update(ctx, &b); err != nil {
			return fmt.Errorf("release in block %s: %w", cidr, err)
		}
		return nil
	})
}

// ReleaseIP frees addr whoever holds it (an operator's action); ErrNotFound
// when it is not allocated.
func (a *Allocator) ReleaseIP(ctx context.Context, addr netip.Addr) error {
	al, err := a.AllocationOf(ctx, addr)
	if err != nil {
		return fmt.Errorf("release %s: %w", addr, err)
	}
	al.Sequence = 0
	return a.release(ctx, al, false)
}

// ReleaseAllocation frees al only if addr is still held by al.Handle with
// al.Sequence (ErrStaleRelease otherwise): a late release, e.g. by the GC,
// never frees an address that was re-used since it was read.
func (a *Allocator) ReleaseAllocation(ctx context.Context, al Allocation) error {
	return a.release(ctx, al, true)
}

func (a *Allocator) release(ctx context.Context, al Allocation, exact bool) error {
	unlock, err := a.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	ord, ok := Ordinal(al.Block, al.Addr)
	if !ok {
		return fmt.Errorf("release %s: not in block %s: %w", al.Addr, al.Block, ErrInvalid)
	}
	var seq *uint64
	handle := ""
	if exact {
		seq, handle = &al.Sequence, al.Handle
	}
	err = a.releaseInBlock(ctx, al.Block, func(b *v1.IPAMBlockSpec) error {
		if exact && al.Handle == "" {
			// The allocation had no handle: still require it unchanged.
			if cur, ok := allocationAt(al.Block, b, ord); ok && cur.Handle != "" {
				return fmt.Errorf("%s now held by %s: %w", al.Addr, cur.Handle, ErrStaleRelease)
			}
		}
		return releaseOrdinal(b, ord, handle, seq)
	})
	if err != nil {
		return fmt.Errorf("release %s: %w", al.Addr, err)
	}
	if al.Handle != "" {
		if err := a.forgetBlockInHandle(ctx, al.Handle, al.Block); err != nil {
			return fmt.Errorf("release %s: %w", al.Addr, err)
		}
	}
	return nil
}

// forgetBlockInHandle drops block from handle's index once the handle holds
// no address there, and deletes the handle once it holds none at all.
func (a *Allocator) forgetBlockInHandle(ctx context.Context, handle string, block netip.Prefix) error {
	held, err := a.handleAddrs(ctx, handle)
	if err != nil {
		return err
	}
	return retryConflict(ctx, a.tries, "update handle "+handle, func() error {
		var h v1.IPAMHandle
		if err := a.store.Get(ctx, HandleName(handle), &h); errors.Is(err, ErrNotFound) {
			return nil
		} else if err != nil {
			return fmt.Errorf("read handle %s: %w", handle, err)
		}
		if !slices.ContainsFunc(held, block.Contains) {
			delete(h.Spec.Block, block.String())
		}
		if len(held) == 0 || len(h.Spec.Block) == 0 {
			if err := a.store.Delete(ctx, &h); err != nil && !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("delete handle %s: %w", handle, err)
			}
			return nil
		}
		if err := a.store.Update(ctx, &h); err != nil {
			return fmt.Errorf("update handle %s: %w", handle, err)
		}
		return nil
	})
}

// DeleteHandleIfEmpty deletes handle when it holds no address (the GC's
// repair of "handle without allocations"); it reports whether it did.
func (a *Allocator) DeleteHandleIfEmpty(ctx context.Context, handle string) (bool, error) {
	unlock, err := a.lock(ctx)
	if err != nil {
		return false, err
	}
	defer unlock()
	held, err := a.handleAddrs(ctx, handle)
	if err != nil || len(held) > 0 {
		return false, err
	}
	var h v1.IPAMHandle
	if err := a.store.Get(ctx, HandleName(handle), &h); errors.Is(err, ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("read handle %s: %w", handle, err)
	}
	// A concurrent Assign would have changed the handle (recordHandle) and
	// made this precondition fail.
	if err := a.store.Delete(ctx, &h); err != nil {
		return false, fmt.Errorf("delete handle %s: %w", handle, err)
	}
	return true, nil
}

// ReleasePoolAffinities releases every node's claim on the blocks of pool
// (for deleting the pool safely; disable the pool first): empty blocks are
// deleted, blocks still holding addresses lose their affinity and are
// deleted later, once empty, by ReleaseEmptyBlock.
func (a *Allocator) ReleasePoolAffinities(ctx context.Context, pool netip.Prefix) error {
	var list v1.BlockAffinityList
	if err := a.store.List(ctx, &list, nil); err != nil {
		return fmt.Errorf("release affinities of pool %s: list affinities: %w", pool, err)
	}
	for i := range list.Items {
		cidr, err := netip.ParsePrefix(list.Items[i].Spec.CIDR)
		if err != nil || !pool.Contains(cidr.Addr()) {
			continue
		}
		if err := a.releaseAffinity(ctx, list.Items[i].Name, cidr, false); err != nil {
			return fmt.Errorf("release affinities of pool %s: %w", pool, err)
		}
	}
	return nil
}

// ErrBlockInUse: a block to be released holds addresses.
var ErrBlockInUse = errors.New("block holds addresses")

// ReleaseEmptyBlock releases node's claim on an empty block and deletes it;
// ErrBlockInUse (and no change) when it holds an address by then.
func (a *Allocator) ReleaseEmptyBlock(ctx context.Context, node string, block netip.Prefix) error {
	if node == "" {
		return a.releaseOrphanBlock(ctx, block)
	}
	if err := a.releaseAffinity(ctx, AffinityName(node, block), block, true); err != nil {
		return fmt.Errorf("release block %s of node %s: %w", block, node, err)
	}
	return nil
}

// releaseAffinity releases a claim in three steps: mark the affinity
// pendingDeletion (allocators stop using it), delete the block if empty
// (resourceVersion precondition, so an allocation racing us wins) or drop
// its affinity, then delete the affinity.
func (a *Allocator) releaseAffinity(ctx context.Context, affName string, cidr netip.Prefix, mustBeEmpty bool) error {
	unlock, err := a.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	var aff v1.BlockAffinity
	err = retryConflict(ctx, a.tries, "mark affinity "+affName, func() error {
		aff = v1.BlockAffinity{}
		if err := a.store.Get(ctx, affName, &aff); err != nil {
			return fmt.Errorf("read affinity %s: %w", affName, err)
		}
		if aff.Spec.State == v1.AffinityPendingDeletion {
			return nil
		}
		aff.Spec.State = v1.AffinityPendingDeletion
		if err := a.store.Update(ctx, &aff); err != nil {
			return fmt.Errorf("mark affinity %s: %w", affName, err)
		}
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	inUse := false
	err = retryConflict(ctx, a.tries, "release block "+cidr.String(), func() error {
		var b v1.IPAMBlock
		if err := a.store.Get(ctx, BlockName(cidr), &b); errors.Is(err, ErrNotFound) {
			return nil
		} else if err != nil {
			return fmt.Errorf("read block %s: %w", cidr, err)
		}
		if blockNode(&b.Spec) != aff.Spec.Node {
			return nil // not ours (a claim we lost): leave the block alone
		}
		if isEmpty(&b.Spec) {
			if err := a.store.Delete(ctx, &b); err != nil && !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("delete block %s: %w", cidr, err)
			}
			return nil
		}
		if mustBeEmpty {
			inUse = true
			return nil
		}
		b.Spec.Affinity = nil
		if err := a.store.Update(ctx, &b); err != nil {
			return fmt.Errorf("drop affinity of block %s: %w", cidr, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if inUse {
		// Put the claim back as it was.
		err := retryConflict(ctx, a.tries, "restore affinity "+affName, func() error {
			aff = v1.BlockAffinity{}
			if err := a.store.Get(ctx, affName, &aff); err != nil {
				return fmt.Errorf("read affinity %s: %w", affName, err)
			}
			aff.Spec.State = v1.AffinityConfirmed
			return a.store.Update(ctx, &aff)
		})
		if err != nil {
			return fmt.Errorf("restore affinity %s: %w", affName, err)
		}
		return fmt.Errorf("block %s: %w", cidr, ErrBlockInUse)
	}
	if err := a.store.Delete(ctx, &aff); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("delete affinity %s: %w", affName, err)
	}
	return nil
}

// releaseOrphanBlock deletes an empty block no node is affine to.
func (a *Allocator) releaseOrphanBlock(ctx context.Context, cidr netip.Prefix) error {
	unlock, err := a.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	var b v1.IPAMBlock
	if err := a.store.Get(ctx, BlockName(cidr), &b); errors.Is(err, ErrNotFound) {
		return nil
	} else if err != nil {
		return fmt.Errorf("read block %s: %w", cidr, err)
	}
	if !isEmpty(&b.Spec) || blockNode(&b.Spec) != "" {
		return fmt.Errorf("block %s: %w", cidr, ErrBlockInUse)
	}
	if err := a.store.Delete(ctx, &b); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("delete block %s: %w", cidr, err)
	}
	return nil
}
