// Package ipam hands out pod addresses from IPPools, in per-node blocks kept
// on the Kubernetes API (IPAMBlock, BlockAffinity, IPAMHandle).
//
// The block math (block names, ordinals, the node-seeded block order) is
// pure. The Allocator works over a small Store interface (implemented on the
// CRDs by ipam/k8sstore) and never caches API state between calls.
//
// Invariants, and the failures they prevent:
//
//   - An address is handed out only by a successful compare-and-swap write
//     of its block (resourceVersion), so two allocators racing for the same
//     ordinal cannot both win. Every read-modify-write goes through one
//     bounded retry helper (retryConflict); conflicts retry, anything else
//     is returned with context.
//   - A block is created only after its claimant wrote a pending
//     BlockAffinity, and is used for new allocations only once that affinity
//     is confirmed. Creating the block is the arbiter: a node whose create
//     fails with "already exists" lost the race, deletes its pending
//     affinity and tries the next block. A claim interrupted at any step is
//     resumed by the next allocation of the same node.
//   - The handle (IPAMHandle) is written before the block, so a crash
//     between the two leaves a handle without an allocation (harmless,
//     reported by the Checker) and never an allocation a repeated ADD could
//     not find. A repeated Assign for a handle returns the address the
//     handle already holds.
//   - Every allocation records the block's sequence number at the time it
//     was made; a release naming an old sequence number (a late GC) fails
//     with ErrStaleRelease instead of freeing a re-used address.
//   - Freed ordinals go to the tail of the block's FIFO free list, so an
//     address is re-used as late as possible.
//   - An empty block is released only with its affinity first marked
//     pendingDeletion and the block deleted with a resourceVersion
//     precondition (an allocation racing the release wins); a node's last
//     block is never released while the node exists.
//   - The GC releases an allocation only after it has looked leaked for the
//     whole grace period, re-reading the pod (or node) from the API just
//     before the release, and only if its handle and sequence number are
//     unchanged; it never releases the address of a pod that exists.
package ipam
