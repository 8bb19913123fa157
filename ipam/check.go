package ipam

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	v1 "github.com/gingham-net/gingham/api/v1"
)

// PodKey names a pod.
type PodKey struct{ Namespace, Name string }

// Cluster is what the Checker and GC need to know about pods and nodes.
// The Exists methods must read the API, not a cache: they are the GC's last
// check before a release.
type Cluster interface {
	ListPods(ctx context.Context) ([]PodKey, error)
	ListNodes(ctx context.Context) ([]string, error)
	PodExists(ctx context.Context, namespace, name string) (bool, error)
	NodeExists(ctx context.Context, name string) (bool, error)
}

// Report is the result of a consistency check (ginghamctl ipam check; the
// GC's input). Lists are sorted.
type Report struct {
	Blocks      int `json:"blocks"`
	Allocations int `json:"allocations"`
	Handles     int `json:"handles"`
	// PodGone: allocations whose pod (attributes namespace, pod) is gone.
	PodGone []Allocation `json:"podGone"`
	// NodeGone: allocations (pods' or tunnel addresses) whose node is gone.
	NodeGone []Allocation `json:"nodeGone"`
	// HandlesWithoutAllocations: handles holding no address (e.g. an
	// assignment interrupted between its handle and block writes).
	HandlesWithoutAllocations []string `json:"handlesWithoutAllocations"`
	// AllocationsWithoutHandles: addresses whose handle object is missing.
	AllocationsWithoutHandles []Allocation `json:"allocationsWithoutHandles"`
	// PendingAffinities: block claims not (yet) confirmed; an old one is
	// an interrupted claim the node resumes on its next allocation.
	PendingAffinities []string `json:"pendingAffinities"`
}

// Problems counts the findings.
func (r *Report) Problems() int {
	return len(r.PodGone) + len(r.NodeGone) + len(r.HandlesWithoutAllocations) + len(r.AllocationsWithoutHandles)
}

// Checker finds leaked and inconsistent IPAM state.
type Checker struct {
	store   Store
	cluster Cluster
}

// NewChecker returns a Checker.
func NewChecker(store Store, cluster Cluster) *Checker {
	return &Checker{store: store, cluster: cluster}
}

// Check reads blocks, handles, affinities, pods and nodes once and reports.
// It reads IPAM state before pods and nodes, so a pod created after the
// blocks were read cannot make its fresh allocation look leaked.
func (c *Checker) Check(ctx context.Context) (*Report, error) {
	var blocks v1.IPAMBlockList
	if err := c.store.List(ctx, &blocks, nil); err != nil {
		return nil, fmt.Errorf("check: list blocks: %w", err)
	}
	var handles v1.IPAMHandleList
	if err := c.store.List(ctx, &handles, nil); err != nil {
		return nil, fmt.Errorf("check: list handles: %w", err)
	}
	var affs v1.BlockAffinityList
	if err := c.store.List(ctx, &affs, nil); err != nil {
		return nil, fmt.Errorf("check: list affinities: %w", err)
	}
	podList, err := c.cluster.ListPods(ctx)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	nodeList, err := c.cluster.ListNodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	pods := map[PodKey]bool{}
	for _, p := range podList {
		pods[p] = true
	}
	nodes := map[string]bool{}
	for _, n := range nodeList {
		nodes[n] = true
	}
	handleSet := map[string]bool{}
	for _, h := range handles.Items {
		handleSet[h.Spec.HandleID] = true
	}

	r := &Report{Blocks: len(blocks.Items), Handles: len(handles.Items)}
	used := map[string]bool{}
	for i := range blocks.Items {
		cidr, err := blockCIDR(&blocks.Items[i])
		if err != nil {
			continue
		}
		for _, al := range allocations(cidr, &blocks.Items[i].Spec) {
			r.Allocations++
			used[al.Handle] = true
			if al.Handle == "" || !handleSet[al.Handle] {
				r.AllocationsWithoutHandles = append(r.AllocationsWithoutHandles, al)
			}
			switch {
			case al.Node() != "" && !nodes[al.Node()]:
				r.NodeGone = append(r.NodeGone, al)
			case al.Attrs[AttrPodName] != "" && !pods[PodKey{al.Attrs[AttrNamespace], al.Attrs[AttrPodName]}]:
				r.PodGone = append(r.PodGone, al)
			}
		}
	}
	for _, h := range handles.Items {
		if !used[h.Spec.HandleID] {
			r.HandlesWithoutAllocations = append(r.HandlesWithoutAllocations, h.Spec.HandleID)
		}
	}
	for _, a := range affs.Items {
		if a.Spec.State != v1.AffinityConfirmed {
			r.PendingAffinities = append(r.PendingAffinities, a.Name)
		}
	}
	byAddr := func(x, y Allocation) int { return x.Addr.Compare(y.Addr) }
	slices.SortFunc(r.PodGone, byAddr)
	slices.SortFunc(r.NodeGone, byAddr)
	slices.SortFunc(r.AllocationsWithoutHandles, byAddr)
	slices.Sort(r.HandlesWithoutAllocations)
	slices.Sort(r.PendingAffinities)
	return r, nil
}

// emptyBlocks lists the empty blocks and their affine node (for the GC).
func emptyBlocks(blocks []v1.IPAMBlock) map[netip.Prefix]string {
	out := map[netip.Prefix]string{}
	for i := range blocks {
		if cidr, err := blockCIDR(&blocks[i]); err == nil && isEmpty(&blocks[i].Spec) {
			out[cidr] = blockNode(&blocks[i].Spec)
		}
	}
	return out
}
