package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/ipam"
	"github.com/gingham-net/gingham/ipip"
)

// tunnel drives tunl0 and the IPIP ingress filter from the agent loop. It
// is owned by the loop goroutine.
//
// Invariants:
//   - A node without IPIP support (no ipip module, probe failed) never
//     creates tunl0; it reports why, and the pools asking for IPIP are
//     reported unavailable instead of served without encapsulation.
//   - The tunnel address is allocated from IPAM and recorded on the Node
//     before tunl0 gets it.
type tunnel struct {
	supported bool
	reason    string // why IPIP cannot be served, when !supported
	mgr       *ipip.Manager
	filter    *ipip.Filter
	alloc     *ipam.Allocator
	client    client.Client
	node      string
	hostMTU   int
	log       *zap.Logger
}

func newTunnel(c client.Client, alloc *ipam.Allocator, node string, hostMTU int, log *zap.Logger) *tunnel {
	t := &tunnel{client: c, alloc: alloc, node: node, hostMTU: hostMTU, log: log}
	ok, err := ipip.Supported()
	switch {
	case err != nil:
		t.reason = "probe of IPIP support failed: " + err.Error()
	case !ok:
		t.reason = "this kernel has no ipip module (CONFIG_NET_IPIP)"
	default:
		if t.mgr, err = ipip.NewManager(-1, ipip.WithLogger(log)); err != nil {
			t.reason = "tunl0 manager: " + err.Error()
		} else {
			t.supported = true
			t.filter = ipip.NewFilter(-1, ipip.WithFilterLogger(log))
		}
	}
	if !t.supported {
		log.Warn("IPIP unavailable: pools with ipipMode Always or CrossSubnet cannot be served on this node; other pools are served", zap.String("reason", t.reason))
	}
	return t
}

var _ Tunnel = (*tunnel)(nil)

// Sync brings tunl0, its address and the ingress filter in line with the
// pools; it reports whether routes may go through tunl0.
func (t *tunnel) Sync(ctx context.Context, p TunnelPlan) TunnelState {
	if !t.supported {
		return TunnelState{Reason: t.reason}
	}
	addr := p.Local.IPIPTunnelAddr
	if ipip.Enabled(p.Pools) && !addr.IsValid() {
		a, err := t.alloc.AssignTunnelAddr(ctx, t.node, p.Local.Labels)
		if err != nil {
			t.log.Warn("allocate IPIP tunnel address", zap.Error(err))
			return TunnelState{}
		}
		if err := t.annotate(ctx, a.String()); err != nil {
			t.log.Warn("record IPIP tunnel address on the node", zap.Error(err))
			return TunnelState{}
		}
		addr = a
	}
	st, err := t.mgr.Apply(ipip.Desire(p.Pools, addr, t.hostMTU))
	if err != nil {
		if errors.Is(err, ipip.ErrUnsupported) {
			t.supported, t.reason = false, err.Error()
		}
		t.log.Warn("tunl0", zap.Error(err))
		return TunnelState{Reason: t.reason}
	}
	if err := t.filter.Apply(p.Peers, p.Full); err != nil {
		t.log.Warn("IPIP ingress filter", zap.Error(err))
	}
	return TunnelState{Up: st.Ready}
}

func (t *tunnel) annotate(ctx context.Context, addr string) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{v1.AnnotationIPv4IPIPTunnelAddr: addr}}})
	if err != nil {
		return err
	}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: t.node}}
	if err := t.client.Patch(ctx, n, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("annotate node %s with %s: %w", t.node, addr, err)
	}
	return nil
}
