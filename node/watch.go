package node

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/gingham-net/gingham/api/model"
	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/internal/kube"
)

// Annotations the CNI plugin writes on a Pod so the agent and IPAM can
// match addresses to pods.
const (
	AnnotationPodIP       = "gingham.dev/podIP"
	AnnotationContainerID = "gingham.dev/containerID"
)

// Snapshot is everything the agent derives its desired state from, read
// from the informer caches at one moment and translated into the model:
// it holds no API object.
type Snapshot struct {
	Local model.Node
	Nodes []model.Node // every node with a BGP address, sorted by name
	Pools []model.Pool
	// BGP is this node's merged BGPConfiguration; Peers the valid
	// BGPPeers. Both carry the agent's graceful-restart time where the
	// objects set none (see bgpModel).
	BGP   model.BGPConfig
	Peers []model.Peer
	// LocalBlocks are the confirmed blocks affine to this node, sorted.
	LocalBlocks []netip.Prefix
	// LocalPods are this node's pods that have an address.
	LocalPods []LocalPod
	// Problems are objects that failed translation (each names itself);
	// they are left out of the snapshot.
	Problems []error
}

// LocalPod is a pod on this node with its address.
type LocalPod struct {
	Namespace, Name string
	IP              netip.Addr
}

// watcher keeps informer caches of the objects the agent needs and signals
// every change on changed (coalesced: one pending signal at most). It is
// the only code of the agent that reads API objects.
type watcher struct {
	cache       cache.Cache
	nodeName    string
	restartTime time.Duration // GINGHAM_GRACEFUL_RESTART_TIME
	changed     chan struct{}
	log         *zap.Logger
}

var _ SnapshotSource = (*watcher)(nil)

func newWatcher(cfg *rest.Config, nodeName string, restartTime time.Duration, log *zap.Logger) (*watcher, error) {
	c, err := cache.New(cfg, cache.Options{
		Scheme: kube.Scheme(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}: {Field: fields.OneTermEqualSelector("spec.nodeName", nodeName)},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("create informer cache: %w", err)
	}
	return &watcher{cache: c, nodeName: nodeName, restartTime: restartTime, changed: make(chan struct{}, 1), log: log}, nil
}

func (w *watcher) poke() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

// register adds the change handler to an informer of every watched kind.
func (w *watcher) register(ctx context.Context) error {
	handler := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { w.poke() },
		UpdateFunc: func(any, any) { w.poke() },
		DeleteFunc: func(any) { w.poke() },
	}
	kinds := []client.Object{&corev1.Node{}, &corev1.Pod{}, &v1.IPPool{}, &v1.BlockAffinity{}, &v1.BGPPeer{}, &v1.BGPConfiguration{}}
	for _, k := range kinds {
		inf, err := w.cache.GetInformer(ctx, k)
		if err != nil {
			return fmt.Errorf("informer for %T: %w", k, err)
		}
		if _, err := inf.AddEventHandler(handler); err != nil {
			return fmt.Errorf("watch %T: %w", k, err)
		}
	}
	return nil
}

// run runs the informers until ctx ends; it returns once they have stopped.
func (w *watcher) run(ctx context.Context) error {
	if err := w.cache.Start(ctx); err != nil {
		return fmt.Errorf("run informer cache: %w", err)
	}
	return nil
}

// waitSynced returns once every informer has listed its objects.
func (w *watcher) waitSynced(ctx context.Context) error {
	if !w.cache.WaitForCacheSync(ctx) {
		return fmt.Errorf("wait for informer caches: %w", ctx.Err())
	}
	return nil
}

// Snapshot reads the caches into a Snapshot.
func (w *watcher) Snapshot(ctx context.Context) (Snapshot, error) {
	var s Snapshot
	var nodes corev1.NodeList
	if err := w.cache.List(ctx, &nodes); err != nil {
		return s, fmt.Errorf("list nodes: %w", err)
	}
	for i := range nodes.Items {
		n, err := model.NodeFromAPI(&nodes.Items[i])
		if err != nil {
			s.Problems = append(s.Problems, fmt.Errorf("Node %s: %w", nodes.Items[i].Name, err))
			continue
		}
		if n.Name == w.nodeName {
			s.Local = n
		}
		if n.IPv4.IsValid() {
			s.Nodes = append(s.Nodes, n)
		}
	}
	sort.Slice(s.Nodes, func(i, j int) bool { return s.Nodes[i].Name < s.Nodes[j].Name })

	var pools v1.IPPoolList
	if err := w.cache.List(ctx, &pools); err != nil {
		return s, fmt.Errorf("list IPPools: %w", err)
	}
	var errs []error
	s.Pools, errs = model.Pools(pools.Items)
	s.Problems = append(s.Problems, errs...)

	var cfgs v1.BGPConfigurationList
	if err := w.cache.List(ctx, &cfgs); err != nil {
		return s, fmt.Errorf("list BGPConfigurations: %w", err)
	}
	var peers v1.BGPPeerList
	if err := w.cache.List(ctx, &peers); err != nil {
		return s, fmt.Errorf("list BGPPeers: %w", err)
	}
	s.BGP, s.Peers, errs = bgpModel(cfgs.Items, peers.Items, w.nodeName, w.restartTime)
	s.Problems = append(s.Problems, errs...)

	var affs v1.BlockAffinityList
	if err := w.cache.List(ctx, &affs); err != nil {
		return s, fmt.Errorf("list BlockAffinities: %w", err)
	}
	for _, a := range affs.Items {
		if a.Spec.State != v1.AffinityConfirmed || a.Spec.Deleted {
			continue
		}
		p, err := netip.ParsePrefix(a.Spec.CIDR)
		if err != nil {
			s.Problems = append(s.Problems, fmt.Errorf("BlockAffinity %s: spec.cidr %q: %w", a.Name, a.Spec.CIDR, err))
			continue
		}
		if a.Spec.Node == w.nodeName {
			s.LocalBlocks = append(s.LocalBlocks, p)
		}
	}
	sort.Slice(s.LocalBlocks, func(i, j int) bool { return s.LocalBlocks[i].Addr().Less(s.LocalBlocks[j].Addr()) })

	var pods corev1.PodList
	if err := w.cache.List(ctx, &pods); err != nil {
		return s, fmt.Errorf("list pods: %w", err)
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName != w.nodeName || p.Spec.HostNetwork || p.DeletionTimestamp != nil {
			continue
		}
		ipStr := p.Annotations[AnnotationPodIP]
		if ipStr == "" {
			continue
		}
		pfx, err := netip.ParsePrefix(ipStr)
		ip := pfx.Addr()
		if err != nil {
			if ip, err = netip.ParseAddr(ipStr); err != nil {
				s.Problems = append(s.Problems, fmt.Errorf("Pod %s/%s: annotation %s %q: %w", p.Namespace, p.Name, AnnotationPodIP, ipStr, err))
				continue
			}
		}
		s.LocalPods = append(s.LocalPods, LocalPod{Namespace: p.Namespace, Name: p.Name, IP: ip})
	}
	return s, nil
}

// bgpModel translates this node's BGPConfigurations (the cluster's
// "default" with "node.<name>" on top) and the BGPPeers. The
// graceful-restart time of the mesh and of peers that set none is the
// agent's (GINGHAM_GRACEFUL_RESTART_TIME). An invalid BGPConfiguration
// gives the defaults; invalid BGPPeers are left out. Each error names its
// object.
func bgpModel(cfgs []v1.BGPConfiguration, peers []v1.BGPPeer, nodeName string, restartTime time.Duration) (model.BGPConfig, []model.Peer, []error) {
	var def, node *v1.BGPConfiguration
	for i := range cfgs {
		switch cfgs[i].Name {
		case v1.DefaultBGPConfigName:
			def = &cfgs[i]
		case v1.NodeBGPConfigPrefix + nodeName:
			node = &cfgs[i]
		}
	}
	var errs []error
	cfg, err := model.BGPConfigFromAPI(def, node)
	if err != nil {
		errs = append(errs, fmt.Errorf("using the default BGP configuration: %w", err))
		cfg = model.DefaultBGPConfig()
	}
	meshSet := func(c *v1.BGPConfiguration) bool { return c != nil && c.Spec.NodeMeshMaxRestartTime != nil }
	if !meshSet(def) && !meshSet(node) {
		cfg.MeshRestartTime = restartTime
	}
	out, perrs := model.Peers(peers)
	errs = append(errs, perrs...)
	explicit := map[string]bool{}
	for _, p := range peers {
		explicit[p.Name] = p.Spec.MaxRestartTime != nil
	}
	for i := range out {
		if !explicit[out[i].Name] {
			out[i].RestartTime = restartTime
		}
	}
	return cfg, out, errs
}
