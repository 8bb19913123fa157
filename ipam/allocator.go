package ipam

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/gingham-net/gingham/api/model"
	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/internal/logging"
)

// AnnotationIPv4Pools on a pod (or its namespace) names the pools its
// address may come from: a JSON list of pool names or CIDRs.
const AnnotationIPv4Pools = "gingham.dev/ipv4pools"

// TunnelHandle is the handle of a node's IPIP tunnel address.
func TunnelHandle(node string) string { return "ipip-tunnel-addr-" + node }

// Defaults of Options and of IPAMConfiguration.
const (
	DefaultMaxAttempts      = 100
	DefaultMaxBlocksPerHost = 20
)

// Options tune an Allocator; the zero value is usable.
type Options struct {
	Logger      *zap.Logger      // default zap.NewNop()
	Now         func() time.Time // default time.Now
	MaxAttempts int              // conflict retries per write; default 100
}

// Allocator assigns and releases addresses. Its methods may be called from
// many goroutines; the writes of one Allocator are serialized (as the CNI
// host lock serializes processes), while separate Allocators (nodes) race
// through compare-and-swap.
type Allocator struct {
	store Store
	log   *zap.Logger
	now   func() time.Time
	tries int
	turn  chan struct{} // held by the one call writing at a time
}

// New returns an Allocator over store.
func New(store Store, opts Options) *Allocator {
	a := &Allocator{store: store, log: opts.Logger, now: opts.Now, tries: opts.MaxAttempts, turn: make(chan struct{}, 1)}
	if a.log == nil {
		a.log = zap.NewNop()
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.tries <= 0 {
		a.tries = DefaultMaxAttempts
	}
	return a
}

func (a *Allocator) lock(ctx context.Context) (func(), error) {
	select {
	case a.turn <- struct{}{}:
		return func() { <-a.turn }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for allocator: %w", context.Cause(ctx))
	}
}

// AssignRequest asks for one IPv4 address.
type AssignRequest struct {
	Handle     string            // required: <network>.<containerID>
	Node       string            // required: the node the address is for
	NodeLabels map[string]string // matched against pools' nodeSelector
	// Pools restricts the pools (names or CIDRs); empty means every
	// enabled pool that selects the node and allows Use.
	Pools []string
	Use   v1.IPPoolAllowedUse // default Workload
	Attrs map[string]string   // owner attributes (pod, namespace, type...)
}

// Assign allocates one address for req.Handle. A repeated call for a handle
// that already holds an address returns that address. On failure nothing is
// left allocated for the handle.
func (a *Allocator) Assign(ctx context.Context, req AssignRequest) (netip.Addr, error) {
	addr, _, err := a.AssignOrReuse(ctx, req)
	return addr, err
}

// AssignOrReuse is Assign that also says whether the handle already held
// the address (reused: this call allocated nothing, so a caller rolling
// back must not release it).
func (a *Allocator) AssignOrReuse(ctx context.Context, req AssignRequest) (addr netip.Addr, reused bool, err error) {
	if req.Handle == "" || req.Node == "" {
		return netip.Addr{}, false, fmt.Errorf("assign: handle and node are required: %w", ErrInvalid)
	}
	if req.Use == "" {
		req.Use = v1.UseWorkload
	}
	unlock, err := a.lock(ctx)
	if err != nil {
		return netip.Addr{}, false, err
	}
	defer unlock()
	log := a.log.With(zap.String(logging.KeyHandle, req.Handle), zap.String(logging.KeyNode, req.Node))

	if held, err := a.handleAddrs(ctx, req.Handle); err != nil {
		return netip.Addr{}, false, fmt.Errorf("assign %s: %w", req.Handle, err)
	} else if len(held) > 0 {
		log.Debug("handle already holds an address", zap.Stringer("addr", held[0]))
		return held[0], true, nil
	}
	addr, err = a.assignNew(ctx, req, log)
	return addr, false, err
}

// assignNew allocates for a handle that holds nothing (under the lock).
func (a *Allocator) assignNew(ctx context.Context, req AssignRequest, log *zap.Logger) (addr netip.Addr, err error) {
	defer func() {
		if err == nil {
			return
		}
		// Leave nothing behind: the handle and any address a write that
		// reported failure may still have made.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if cerr := a.releaseHandle(cctx, req.Handle); cerr != nil {
			log.Warn("clean up failed assignment", zap.Error(cerr))
		}
	}()

	pools, err := a.usablePools(ctx, req)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("assign %s: %w", req.Handle, err)
	}
	attrs := maps.Clone(req.Attrs)
	if attrs == nil {
		attrs = map[string]string{}
	}
	attrs[AttrNode] = req.Node
	attrs[AttrTimestamp] = a.now().UTC().Format(time.RFC3339)

	// 1. The node's own blocks.
	affs, err := a.nodeAffinities(ctx, req.Node)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("assign %s: %w", req.Handle, err)
	}
	owned := 0
	for _, aff := range affs {
		cidr, err := netip.ParsePrefix(aff.Spec.CIDR)
		if err != nil || !inPools(pools, cidr) {
			continue
		}
		switch aff.Spec.State {
		case v1.AffinityPendingDeletion:
			continue
		case v1.AffinityPending:
			// A claim of ours was interrupted: finish it.
			if err := a.completeClaim(ctx, &aff, cidr); errors.Is(err, errClaimConflict) {
				continue
			} else if err != nil {
				return netip.Addr{}, fmt.Errorf("assign %s: %w", req.Handle, err)
			}
		}
		owned++
		addr, ok, err := a.assignFromBlock(ctx, cidr, req.Handle, attrs, req.Node)
		if errors.Is(err, ErrNotFound) {
			// Affinity confirmed but block gone (a release raced us, or a
			// crash): re-claim it through the pending state.
			if err = a.reclaimMissingBlock(ctx, &aff, cidr); err == nil {
				addr, ok, err = a.assignFromBlock(ctx, cidr, req.Handle, attrs, req.Node)
			}
			if errors.Is(err, errClaimConflict) || errors.Is(err, ErrNotFound) {
				continue
			}
		}
		if err != nil {
			return netip.Addr{}, fmt.Errorf("assign %s: %w", req.Handle, err)
		}
		if ok {
			log.Debug("assigned from affine block", zap.Stringer("addr", addr))
			return addr, nil
		}
	}

	// 2. A new block.
	cfg, err := a.config(ctx)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("assign %s: %w", req.Handle, err)
	}
	maxBlocks := int(cfg.MaxBlocksPerHost)
	if maxBlocks <= 0 {
		maxBlocks = DefaultMaxBlocksPerHost
	}
	if autoAllocate(cfg) && owned < maxBlocks {
		mine := map[netip.Prefix]bool{}
		for _, aff := range affs {
			if cidr, err := netip.ParsePrefix(aff.Spec.CIDR); err == nil {
				mine[cidr] = true
			}
		}
		addr, ok, err := a.assignFromNewBlock(ctx, pools, mine, req.Handle, attrs, req.Node)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("assign %s: %w", req.Handle, err)
		}
		if ok {
			log.Debug("assigned from newly claimed block", zap.Stringer("addr", addr))
			return addr, nil
		}
	}

	// 3. Borrow from any block of the pools.
	if cfg.StrictAffinity {
		return netip.Addr{}, fmt.Errorf("assign %s: no free address in the node's blocks and strictAffinity forbids borrowing: %w", req.Handle, ErrPoolExhausted)
	}
	addr, ok, err := a.borrow(ctx, pools, req.Handle, attrs, req.Node)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("assign %s: %w", req.Handle, err)
	}
	if ok {
		log.Debug("borrowed address", zap.Stringer("addr", addr))
		return addr, nil
	}
	return netip.Addr{}, fmt.Errorf("assign %s from pools %s: %w", req.Handle, poolNames(pools), ErrPoolExhausted)
}

// AssignTunnelAddr returns the node's IPIP tunnel address (handle
// ipip-tunnel-addr-<node>) from a pool allowing the Tunnel use, allocating
// it on first call. The caller records it on the Node.
func (a *Allocator) AssignTunnelAddr(ctx context.Context, node string, nodeLabels map[string]string) (netip.Addr, error) {
	return a.Assign(ctx, AssignRequest{
		Handle: TunnelHandle(node), Node: node, NodeLabels: nodeLabels,
		Use: v1.UseTunnel, Attrs: map[string]string{AttrType: TypeIPIPTunnel},
	})
}

// assignFromBlock takes a free address of cidr for handle. ok is false when
// the block is full; ErrNotFound when it does not exist.
func (a *Allocator) assignFromBlock(ctx context.Context, cidr netip.Prefix, handle string, attrs map[string]string, node string) (netip.Addr, bool, error) {
	var b v1.IPAMBlock
	if err := a.store.Get(ctx, BlockName(cidr), &b); err != nil {
		return netip.Addr{}, false, fmt.Errorf("read block %s: %w", cidr, err)
	}
	if b.Spec.Deleted || freeCount(&b.Spec) == 0 {
		return netip.Addr{}, false, nil
	}
	// The handle first: a crash after this leaves a handle without an
	// address, never an address without a handle.
	if err := a.recordHandle(ctx, handle, cidr); err != nil {
		return netip.Addr{}, false, err
	}
	var addr netip.Addr
	first := true
	err := retryConflict(ctx, a.tries, "allocate in block "+cidr.String(), func() error {
		if !first {
			b = v1.IPAMBlock{}
			if err := a.store.Get(ctx, BlockName(cidr), &b); err != nil {
				return fmt.Errorf("read block %s: %w", cidr, err)
			}
		}
		first = false
		if _, err := blockCIDR(&b); err != nil {
			return err
		}
		ord, ok := assignOrdinal(&b.Spec, handle, attrs)
		if !ok {
			return nil
		}
		if err := a.store.Update(ctx, &b); err != nil {
			return fmt.Errorf("allocate in block %s: %w", cidr, err)
		}
		addr = AddrAt(cidr, ord)
		return nil
	})
	if err != nil {
		return netip.Addr{}, false, err
	}
	return addr, addr.IsValid(), nil
}

// recordHandle makes handle's IPAMHandle name cidr as the block it holds
// its address in.
func (a *Allocator) recordHandle(ctx context.Context, handle string, cidr netip.Prefix) error {
	key := cidr.String()
	// Most handles are new: try to create first.
	h := v1.IPAMHandle{Spec: v1.IPAMHandleSpec{HandleID: handle, Block: map[string]int{key: 1}}}
	h.Name = HandleName(handle)
	if err := a.store.Create(ctx, &h); err == nil {
		return nil
	} else if !errors.Is(err, ErrAlreadyExists) {
		return fmt.Errorf("create handle %s: %w", handle, err)
	}
	return retryConflict(ctx, a.tries, "record handle "+handle, func() error {
		var h v1.IPAMHandle
		if err := a.store.Get(ctx, HandleName(handle), &h); err != nil {
			return fmt.Errorf("read handle %s: %w", handle, err)
		}
		if h.Spec.Block[key] > 0 && !h.Spec.Deleted {
			return nil
		}
		if h.Spec.Block == nil {
			h.Spec.Block = map[string]int{}
		}
		h.Spec.Block[key] = 1
		h.Spec.Deleted = false
		if err := a.store.Update(ctx, &h); err != nil {
			return fmt.Errorf("update handle %s: %w", handle, err)
		}
		return nil
	})
}

// handleAddrs returns the addresses handle holds, from the blocks its
// IPAMHandle names.
func (a *Allocator) handleAddrs(ctx context.Context, handle string) ([]netip.Addr, error) {
	var h v1.IPAMHandle
	if err := a.store.Get(ctx, HandleName(handle), &h); errors.Is(err, ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("read handle %s: %w", handle, err)
	}
	var out []netip.Addr
	for _, key := range slices.Sorted(maps.Keys(h.Spec.Block)) {
		cidr, err := netip.ParsePrefix(key)
		if err != nil {
			continue
		}
		var b v1.IPAMBlock
		if err := a.store.Get(ctx, BlockName(cidr), &b); errors.Is(err, ErrNotFound) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("read block %s: %w", cidr, err)
		}
		for _, ord := range handleOrdinals(&b.Spec, handle) {
			out = append(out, AddrAt(cidr, ord))
		}
	}
	return out, nil
}

// HandleAddrs returns the addresses a handle holds (none: empty, no error).
func (a *Allocator) HandleAddrs(ctx context.Context, handle string) ([]netip.Addr, error) {
	return a.handleAddrs(ctx, handle)
}

// usablePools returns the pools req may take addresses from, by name.
func (a *Allocator) usablePools(ctx context.Context, req AssignRequest) ([]model.Pool, error) {
	var list v1.IPPoolList
	if err := a.store.List(ctx, &list, nil); err != nil {
		return nil, fmt.Errorf("list pools: %w", err)
	}
	all, errs := model.Pools(list.Items)
	for _, e := range errs {
		a.log.Warn("ignoring invalid pool", zap.Error(e))
	}
	slices.SortFunc(all, func(x, y model.Pool) int { return cmp.Compare(x.Name, y.Name) })
	var out []model.Pool
	if len(req.Pools) == 0 {
		for _, p := range all {
			if p.CIDR.Addr().Is4() && !p.Disabled && p.Allows(req.Use) && p.SelectsNode(req.NodeLabels) {
				out = append(out, p)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("no enabled IPv4 pool selects node %s and allows %s: %w", req.Node, req.Use, ErrNoPools)
		}
		return out, nil
	}
	for _, want := range req.Pools {
		i := slices.IndexFunc(all, func(p model.Pool) bool { return p.Name == want || p.CIDR.String() == want })
		switch {
		case i < 0:
			return nil, &PoolError{Pool: want, Reason: "does not exist (or is invalid)"}
		case all[i].Disabled:
			return nil, &PoolError{Pool: want, Reason: "is disabled"}
		case !all[i].CIDR.Addr().Is4():
			return nil, &PoolError{Pool: want, Reason: "is not IPv4"}
		case !all[i].Allows(req.Use):
			return nil, &PoolError{Pool: want, Reason: "does not allow use " + string(req.Use)}
		case !all[i].SelectsNode(req.NodeLabels):
			return nil, &PoolError{Pool: want, Reason: "does not select node " + req.Node}
		}
		if !slices.ContainsFunc(out, func(p model.Pool) bool { return p.Name == all[i].Name }) {
			out = append(out, all[i])
		}
	}
	return out, nil
}

// config reads the IPAMConfiguration named default (defaults when absent).
func (a *Allocator) config(ctx context.Context) (v1.IPAMConfigurationSpec, error) {
	var c v1.IPAMConfiguration
	if err := a.store.Get(ctx, v1.DefaultIPAMConfigName, &c); errors.Is(err, ErrNotFound) {
		return v1.IPAMConfigurationSpec{}, nil
	} else if err != nil {
		return v1.IPAMConfigurationSpec{}, fmt.Errorf("read IPAMConfiguration %s: %w", v1.DefaultIPAMConfigName, err)
	}
	return c.Spec, nil
}

func autoAllocate(c v1.IPAMConfigurationSpec) bool {
	return c.AutoAllocateBlocks == nil || *c.AutoAllocateBlocks
}

func inPools(pools []model.Pool, block netip.Prefix) bool {
	return slices.ContainsFunc(pools, func(p model.Pool) bool {
		return p.CIDR.Contains(block.Addr()) && p.BlockSize == block.Bits()
	})
}

func poolNames(pools []model.Pool) string {
	s := ""
	for i, p := range pools {
		if i > 0 {
			s += ","
		}
		s += p.Name
	}
	return s
}

// ordinalKey is the SequenceNumberForAllocation key of an ordinal.
func ordinalKey(ord int) string { return strconv.Itoa(ord) }
