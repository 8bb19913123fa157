package ipamplugin

import (
	"context"
	"errors"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	"go.uber.org/zap"

	"github.com/gingham-net/gingham/cni/netconf"
	"github.com/gingham-net/gingham/internal/logging"
	"github.com/gingham-net/gingham/ipam"
)

// staleAllocations picks the allocations GC releases: made by this plugin
// (workload type) for a container of network on node, under a handle
// <network>.<container ID> whose container is in no valid attachment.
// Other nodes' and networks' addresses, tunnel addresses and allocations
// without a handle are never picked.
func staleAllocations(all []ipam.Allocation, network, node string, valid []types.GCAttachment) []ipam.Allocation {
	keep := make(map[string]bool, len(valid))
	for _, a := range valid {
		keep[a.ContainerID] = true
	}
	var out []ipam.Allocation
	for _, al := range all {
		if al.Node() != node || al.Attrs[ipam.AttrType] != ipam.TypeWorkload {
			continue
		}
		id, ok := strings.CutPrefix(al.Handle, network+".")
		if !ok || id == "" || keep[id] {
			continue
		}
		out = append(out, al)
	}
	return out
}

// cmdGC (CNI 1.1) releases the addresses this node holds for containers of
// this network that the runtime no longer lists in
// cni.dev/valid-attachments. Each release names the allocation's handle and
// sequence number, so an address re-used since it was read stays.
func cmdGC(e *env) error {
	if !netconf.HasKey(e.args.StdinData, "cni.dev/valid-attachments") {
		return badConf("GC without cni.dev/valid-attachments: refusing to guess which attachments are valid")
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	all, err := e.alloc.Allocations(ctx)
	if err != nil {
		return cniError("list allocations", err)
	}
	stale := staleAllocations(all, e.conf.Name, e.conf.Nodename, e.conf.ValidAttachments)
	var errs []error
	for _, al := range stale {
		err := e.alloc.ReleaseAllocation(ctx, al)
		switch {
		case errors.Is(err, ipam.ErrStaleRelease), errors.Is(err, ipam.ErrNotFound):
			continue // changed hands or gone since listed: not ours to free
		case err != nil:
			errs = append(errs, err)
			continue
		}
		e.log.Info("released address of a container no longer valid", zap.Stringer("addr", al.Addr), zap.String(logging.KeyHandle, al.Handle))
	}
	if err := errors.Join(errs...); err != nil {
		return cniError("release stale addresses", err)
	}
	return nil
}
