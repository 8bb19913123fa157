package ipam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/internal/logging"
)

// GC defaults.
const (
	DefaultGCGrace          = 15 * time.Minute
	DefaultGCLeaseNamespace = "kube-system"
	DefaultGCLeaseName      = "gingham-ipam-gc"
)

// GCOptions tune a GC; the zero value gives the defaults.
type GCOptions struct {
	// Grace is how long an allocation must look leaked before it is
	// released (default 15m). Interval is the time between passes
	// (default Grace/2, at least one second).
	Grace    time.Duration
	Interval time.Duration
	// The Lease that elects the one GC of the cluster.
	LeaseNamespace string // default kube-system
	LeaseName      string // default gingham-ipam-gc
	// Leader election timings (defaults 15s, 10s, 2s).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	Now                                       func() time.Time // default time.Now
}

// GCResult is what one pass did.
type GCResult struct {
	Candidates     int            // allocations and handles looking leaked
	Released       []Allocation   // addresses freed
	HandlesDeleted []string       // empty handles deleted
	BlocksReleased []netip.Prefix // empty blocks deleted
}

// GC releases leaked addresses: those of deleted pods and deleted nodes,
// once they have looked leaked for the grace period, re-checking the pod or
// node just before. It keeps its state (first-seen times) in the goroutine
// running Run (or calling Sync): Sync must not be called concurrently.
type GC struct {
	alloc   *Allocator
	checker *Checker
	store   Store
	cluster Cluster
	kube    kubernetes.Interface
	node    string
	log     *zap.Logger
	opts    GCOptions

	suspect   map[string]time.Time // candidate key -> first seen
	emptySeen map[netip.Prefix]int // block -> consecutive passes seen empty
}

// NewGC returns a GC for the agent on node (its leader-election identity).
// kube is used only for the Lease.
func NewGC(store Store, cluster Cluster, kube kubernetes.Interface, node string, log *zap.Logger, opts GCOptions) *GC {
	if log == nil {
		log = zap.NewNop()
	}
	if opts.Grace <= 0 {
		opts.Grace = DefaultGCGrace
	}
	if opts.Interval <= 0 {
		opts.Interval = max(opts.Grace/2, time.Second)
	}
	if opts.LeaseNamespace == "" {
		opts.LeaseNamespace = DefaultGCLeaseNamespace
	}
	if opts.LeaseName == "" {
		opts.LeaseName = DefaultGCLeaseName
	}
	if opts.LeaseDuration <= 0 {
		opts.LeaseDuration = 15 * time.Second
	}
	if opts.RenewDeadline <= 0 {
		opts.RenewDeadline = 10 * time.Second
	}
	if opts.RetryPeriod <= 0 {
		opts.RetryPeriod = 2 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log = log.Named("ipam-gc")
	return &GC{
		alloc: New(store, Options{Logger: log, Now: opts.Now}), checker: NewChecker(store, cluster),
		store: store, cluster: cluster, kube: kube, node: node, log: log, opts: opts,
		suspect: map[string]time.Time{}, emptySeen: map[netip.Prefix]int{},
	}
}

// Run campaigns for the Lease until ctx ends; while leading it runs a pass
// every Interval. Losing the lease forgets what was suspected, so a new
// leader waits a full grace period again.
func (g *GC) Run(ctx context.Context) error {
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1ObjectMeta(g.opts.LeaseNamespace, g.opts.LeaseName),
		Client:     g.kube.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: g.node},
	}
	for ctx.Err() == nil {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: lock, Name: g.opts.LeaseName, ReleaseOnCancel: true,
			LeaseDuration: g.opts.LeaseDuration, RenewDeadline: g.opts.RenewDeadline, RetryPeriod: g.opts.RetryPeriod,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: g.lead,
				OnStoppedLeading: func() { g.log.Info("stopped leading IPAM GC") },
			},
		})
		if err != nil {
			return fmt.Errorf("ipam gc: leader election: %w", err)
		}
		le.Run(ctx) // returns when leadership is lost or ctx ends
	}
	return nil
}

func (g *GC) lead(ctx context.Context) {
	g.log.Info("leading IPAM GC", zap.String(logging.KeyNode, g.node))
	g.suspect, g.emptySeen = map[string]time.Time{}, map[netip.Prefix]int{}
	t := time.NewTicker(g.opts.Interval)
	defer t.Stop()
	for {
		if res, err := g.Sync(ctx); err != nil {
			g.log.Warn("IPAM GC pass failed", zap.Error(err))
		} else if len(res.Released)+len(res.HandlesDeleted)+len(res.BlocksReleased) > 0 {
			g.log.Info("IPAM GC pass", zap.Int("released", len(res.Released)), zap.Int("handles", len(res.HandlesDeleted)), zap.Int("blocks", len(res.BlocksReleased)))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sync runs one pass. Errors of single releases are logged and the pass
// goes on; the returned error is for a pass that could not look at all.
func (g *GC) Sync(ctx context.Context) (GCResult, error) {
	var res GCResult
	rep, err := g.checker.Check(ctx)
	if err != nil {
		return res, fmt.Errorf("ipam gc: %w", err)
	}
	now := g.opts.Now()
	seen := map[string]bool{}
	due := func(key string) bool {
		seen[key] = true
		first, ok := g.suspect[key]
		if !ok {
			g.suspect[key] = now
			return g.opts.Grace <= 0
		}
		return now.Sub(first) >= g.opts.Grace
	}
	for _, al := range append(append([]Allocation{}, rep.NodeGone...), rep.PodGone...) {
		key := al.Addr.String() + "/" + al.Handle + "/" + strconv.FormatUint(al.Sequence, 10)
		if seen[key] {
			continue
		}
		res.Candidates++
		if !due(key) {
			continue
		}
		if live, err := g.stillOwned(ctx, al); err != nil || live {
			if err != nil {
				g.log.Warn("re-check before release", zap.Stringer("addr", al.Addr), zap.Error(err))
			}
			delete(g.suspect, key)
			continue
		}
		err := g.alloc.ReleaseAllocation(ctx, al)
		switch {
		case errors.Is(err, ErrStaleRelease):
			g.log.Info("allocation changed since checked; not released", zap.Stringer("addr", al.Addr))
		case err != nil:
			g.log.Warn("release leaked address", zap.Stringer("addr", al.Addr), zap.Error(err))
			continue
		default:
			g.log.Info("released leaked address", zap.Stringer("addr", al.Addr), zap.String(logging.KeyHandle, al.Handle), zap.Any("attrs", al.Attrs))
			res.Released = append(res.Released, al)
		}
		delete(g.suspect, key)
	}
	for _, h := range rep.HandlesWithoutAllocations {
		key := "handle/" + h
		res.Candidates++
		if !due(key) {
			continue
		}
		if ok, err := g.alloc.DeleteHandleIfEmpty(ctx, h); err != nil {
			g.log.Warn("delete empty handle", zap.String(logging.KeyHandle, h), zap.Error(err))
			continue
		} else if ok {
			res.HandlesDeleted = append(res.HandlesDeleted, h)
		}
		delete(g.suspect, key)
	}
	for key := range g.suspect {
		if !seen[key] {
			delete(g.suspect, key)
		}
	}
	blocks, err := g.releaseEmptyBlocks(ctx)
	res.BlocksReleased = blocks
	return res, err
}

// stillOwned re-reads, from the API, whether the allocation's pod (or for
// an allocation without a pod, its node) exists.
func (g *GC) stillOwned(ctx context.Context, al Allocation) (bool, error) {
	if pod, ns := al.Attrs[AttrPodName], al.Attrs[AttrNamespace]; pod != "" {
		return g.cluster.PodExists(ctx, ns, pod)
	}
	if n := al.Node(); n != "" {
		return g.cluster.NodeExists(ctx, n)
	}
	return true, nil // no owner to judge by: never released automatically
}

// releaseEmptyBlocks deletes blocks seen empty in two passes in a row,
// unless the block is its (existing) node's last.
func (g *GC) releaseEmptyBlocks(ctx context.Context) ([]netip.Prefix, error) {
	blocks, err := g.alloc.listBlocks(ctx)
	if err != nil {
		return nil, fmt.Errorf("ipam gc: %w", err)
	}
	var affs v1.BlockAffinityList
	if err := g.store.List(ctx, &affs, nil); err != nil {
		return nil, fmt.Errorf("ipam gc: list affinities: %w", err)
	}
	perNode := map[string]int{}
	for _, a := range affs.Items {
		if a.Spec.State == v1.AffinityConfirmed {
			perNode[a.Spec.Node]++
		}
	}
	empty := emptyBlocks(blocks)
	for b := range g.emptySeen {
		if _, ok := empty[b]; !ok {
			delete(g.emptySeen, b)
		}
	}
	var out []netip.Prefix
	for cidr, node := range empty {
		g.emptySeen[cidr]++
		if g.emptySeen[cidr] < 2 {
			continue
		}
		if node != "" && perNode[node] <= 1 {
			if exists, err := g.cluster.NodeExists(ctx, node); err != nil || exists {
				continue // a node's last block stays
			}
		}
		err := g.alloc.ReleaseEmptyBlock(ctx, node, cidr)
		if errors.Is(err, ErrBlockInUse) {
			continue
		} else if err != nil {
			g.log.Warn("release empty block", zap.String(logging.KeyBlock, cidr.String()), zap.Error(err))
			continue
		}
		perNode[node]--
		delete(g.emptySeen, cidr)
		out = append(out, cidr)
	}
	return out, nil
}

func metav1ObjectMeta(namespace, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: namespace, Name: name}
}
