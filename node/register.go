package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/internal/logging"
	"github.com/gingham-net/gingham/node/autodetect"
)

// nodeAddress is this node's BGP address: GINGHAM_IP when set, else what
// GINGHAM_IP_AUTODETECTION_METHOD finds on host (kubernetes-internal-ip
// reads the Node, waiting for the kubelet to report an InternalIP).
func nodeAddress(ctx context.Context, c client.Client, cfg Config, host autodetect.Host, log *zap.Logger) (netip.Prefix, error) {
	if cfg.NodeIP.IsValid() {
		return cfg.NodeIP, nil
	}
	internalIP := func(ctx context.Context) (netip.Addr, error) { return waitInternalIP(ctx, c, cfg.NodeName, log) }
	r, err := autodetect.Detect(ctx, cfg.IPAutodetection, host, internalIP)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("autodetect node address (GINGHAM_IP_AUTODETECTION_METHOD=%s; or set GINGHAM_IP): %w", cfg.IPAutodetection, err)
	}
	log.Info("autodetected node address", zap.String("method", cfg.IPAutodetection.String()),
		zap.String("address", r.Prefix.String()), zap.String(logging.KeyIface, r.Interface))
	return r.Prefix, nil
}

// waitInternalIP reads the Node's first IPv4 InternalIP, waiting until the
// Node exists and has one.
func waitInternalIP(ctx context.Context, c client.Client, name string, log *zap.Logger) (netip.Addr, error) {
	for attempt := 0; ; attempt++ {
		var n corev1.Node
		err := c.Get(ctx, client.ObjectKey{Name: name}, &n)
		switch {
		case err == nil:
			if a, ok := internalIPv4(&n); ok {
				return a, nil
			}
		case !apierrors.IsNotFound(err):
			return netip.Addr{}, fmt.Errorf("read node %s: %w", name, err)
		}
		if attempt%10 == 0 {
			log.Warn("waiting for the Kubernetes Node to report an InternalIP", zap.String(logging.KeyNode, name))
		}
		select {
		case <-ctx.Done():
			return netip.Addr{}, fmt.Errorf("InternalIP of node %s: %w", name, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// internalIPv4 is the first IPv4 InternalIP in the Node's status.
func internalIPv4(n *corev1.Node) (netip.Addr, bool) {
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil && ip.Is4() {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// registerNode records this node's BGP identity as annotations on its
// Kubernetes Node, waiting for the Node to exist (the kubelet creates it).
// The AS number and route reflector cluster ID are written only when the
// agent's configuration sets them; unset, the Node keeps what an
// administrator annotated (per-node AS, in-cluster route reflectors), as
// calico-node leaves its Node's BGP spec alone when AS and
// CALICO_ROUTE_REFLECTOR_CLUSTER_ID are unset.
func registerNode(ctx context.Context, c client.Client, cfg Config, ip netip.Prefix, log *zap.Logger) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": identityAnnotations(cfg, ip)}})
	if err != nil {
		return fmt.Errorf("encode node annotations: %w", err)
	}
	for attempt := 0; ; attempt++ {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: cfg.NodeName}}
		err := c.Patch(ctx, n, client.RawPatch(types.MergePatchType, patch))
		if err == nil {
			log.Info("node registered", zap.String("ipv4Address", ip.String()))
			return nil
		}
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("annotate node %s: %w", cfg.NodeName, err)
		}
		if attempt%10 == 0 {
			log.Warn("waiting for the Kubernetes Node object to exist", zap.String("node", cfg.NodeName))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("annotate node %s: %w", cfg.NodeName, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// ensureDefaultPool creates the default IPv4 pool from the configuration
// (GINGHAM_IPV4POOL_*) when no pool exists yet, as calico-node does.
func ensureDefaultPool(ctx context.Context, c client.Client, cfg Config, log *zap.Logger) error {
	if cfg.DefaultPoolCIDR == "" {
		return nil
	}
	var pools v1.IPPoolList
	if err := c.List(ctx, &pools); err != nil {
		return fmt.Errorf("list IPPools: %w", err)
	}
	if len(pools.Items) > 0 {
		return nil
	}
	bs := cfg.DefaultBlockSize
	pool := &v1.IPPool{
		ObjectMeta: metav1.ObjectMeta{Name: "default-ipv4-ippool"},
		Spec: v1.IPPoolSpec{
			CIDR: cfg.DefaultPoolCIDR, BlockSize: &bs, IPIPMode: v1.EncapMode(cfg.DefaultPoolIPIP),
			NATOutgoing: cfg.DefaultPoolNAT, NodeSelector: v1.DefaultNodeSelector,
		},
	}
	if err := c.Create(ctx, pool); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create default IPPool %s: %w", cfg.DefaultPoolCIDR, err)
	}
	log.Info("created default IPPool", zap.String("cidr", cfg.DefaultPoolCIDR), zap.String("ipipMode", cfg.DefaultPoolIPIP))
	return nil
}

// identityAnnotations are the Node annotations the agent writes: its
// address always, the AS number and route reflector cluster ID only when
// configured (never deleted).
func identityAnnotations(cfg Config, ip netip.Prefix) map[string]string {
	ann := map[string]string{v1.AnnotationIPv4Address: ip.String()}
	if cfg.ASNumber != 0 {
		ann[v1.AnnotationASNumber] = strconv.FormatUint(uint64(cfg.ASNumber), 10)
	}
	if cfg.RRClusterID != "" {
		ann[v1.AnnotationRouteReflectorClusterID] = cfg.RRClusterID
	}
	return ann
}
