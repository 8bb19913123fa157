package node

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/bgp"
	"github.com/gingham-net/gingham/bgp/gobgp"
	"github.com/gingham-net/gingham/felix"
	"github.com/gingham-net/gingham/internal/kube"
	"github.com/gingham-net/gingham/internal/version"
	"github.com/gingham-net/gingham/ipam"
	"github.com/gingham-net/gingham/ipam/k8sstore"
	"github.com/gingham-net/gingham/node/autodetect"
)

// RESTConfig returns the API server connection for a kubeconfig path, or
// the in-cluster configuration when path is empty.
func RESTConfig(path string) (*rest.Config, error) {
	if path == "" {
		c, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster API config (set GINGHAM_KUBECONFIG outside a pod): %w", err)
		}
		return c, nil
	}
	c, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", path, err)
	}
	return c, nil
}

// machine is what the agent needs of this node's kernel. Run gives it the
// real one; the goroutine-leak test a fake.
type machine interface {
	// MTU detects the uplink towards nodeIP; it returns the pod MTU file
	// and the host MTU tunl0 must fit.
	MTU(nodeIP netip.Addr) (MTUFile, int, error)
	Tunnel(c client.Client, alloc *ipam.Allocator, hostMTU int) Tunnel
	// Dataplane returns felix, to be run once.
	Dataplane(onApply func(felix.Report)) (runnableDataplane, error)
	Endpoints() EndpointSource
}

// runnableDataplane is felix with its owner loop.
type runnableDataplane interface {
	Dataplane
	Run(ctx context.Context) error
}

// linux is the real machine.
type linux struct {
	cfg Config
	log *zap.Logger
}

func (m linux) MTU(nodeIP netip.Addr) (MTUFile, int, error) {
	f, err := newMTUFile(m.cfg.StateDir, nodeIP, m.cfg.MTU, m.log)
	if err != nil {
		return nil, 0, err
	}
	return f, f.hostMTU(), nil
}

func (m linux) Tunnel(c client.Client, alloc *ipam.Allocator, hostMTU int) Tunnel {
	return newTunnel(c, alloc, m.cfg.NodeName, hostMTU, m.log.Named("ipip"))
}

func (m linux) Dataplane(onApply func(felix.Report)) (runnableDataplane, error) {
	dp, err := felix.New(felix.WithLogger(m.log), felix.WithProtocol(m.cfg.RouteProtocol), felix.WithOnApply(onApply),
		felix.WithResyncInterval(m.cfg.ResyncInterval), felix.WithInterfacePrefix(m.cfg.InterfacePrefix))
	if err != nil {
		return nil, fmt.Errorf("create dataplane: %w", err)
	}
	return dp, nil
}

func (m linux) Endpoints() EndpointSource { return kernelEndpoints{prefix: m.cfg.InterfacePrefix} }

// Run runs the agent until ctx ends. On the way out it stops the speaker
// the graceful-restart way (no Cease) and leaves every route in the kernel.
// Every goroutine it starts has ended when it returns.
func Run(ctx context.Context, cfg Config, log *zap.Logger) error {
	log = log.With(zap.String("node", cfg.NodeName))
	log.Info("gingham-node starting", zap.String("version", version.Version))
	rc, err := RESTConfig(cfg.Kubeconfig)
	if err != nil {
		return err
	}
	var cni *cniKubeconfig
	if cfg.CNIKubeconfig != "" && cfg.Kubeconfig == "" { // in-cluster: keep the plugin on the rotating token
		cni = newCNIKubeconfig(cfg.CNIKubeconfig, log.Named("cni-kubeconfig"))
	}
	return run(ctx, cfg, rc, linux{cfg: cfg, log: log}, cni, log)
}

// run is Run's composition root: it builds every part, starts each
// long-running one in one errgroup and, once they have all ended, stops
// the speaker and writes the last status.
func run(ctx context.Context, cfg Config, rc *rest.Config, m machine, cni *cniKubeconfig, log *zap.Logger) (err error) {
	c, err := client.New(rc, client.Options{Scheme: kube.Scheme()})
	if err != nil {
		return fmt.Errorf("create API client: %w", err)
	}
	kubeClient, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("create API clientset: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, ctx := errgroup.WithContext(ctx)
	defer func() { // on every return: nothing started here outlives run
		cancel()
		if werr := g.Wait(); err == nil {
			err = werr
		}
	}()
	if cni != nil {
		g.Go(func() error { cni.run(ctx); return nil })
	}
	nodeIP, err := nodeAddress(ctx, c, cfg, autodetect.System{}, log)
	if err != nil {
		return err
	}
	if err := registerNode(ctx, c, cfg, nodeIP, log); err != nil {
		return err
	}
	if err := ensureDefaultPool(ctx, c, cfg, log); err != nil {
		return err
	}
	w, err := newWatcher(rc, cfg.NodeName, cfg.RestartTime, log)
	if err != nil {
		return err
	}
	if err := w.register(ctx); err != nil {
		return err
	}
	g.Go(func() error { return w.run(ctx) })
	if err := w.waitSynced(ctx); err != nil {
		return err
	}
	mtu, hostMTU, err := m.MTU(nodeIP.Addr())
	if err != nil {
		return err
	}
	if err := mtu.Write(false); err != nil { // the CNI plugin needs it before any pod
		return err
	}
	alloc := ipam.New(k8sstore.New(c), ipam.Options{Logger: log.Named("ipam")})
	tun := m.Tunnel(c, alloc, hostMTU)
	if err := gobgp.ProbeTCPMD5(); err != nil {
		log.Warn("kernel lacks TCP-MD5: BGP peers with passwords cannot establish", zap.Error(err))
	}
	gc := ipam.NewGC(k8sstore.New(c), k8sstore.NewCluster(c), kubeClient, cfg.NodeName, log.Named("ipam-gc"),
		ipam.GCOptions{Grace: cfg.IPAMGCGrace, LeaseNamespace: cfg.Namespace})
	g.Go(func() error {
		if err := gc.Run(ctx); err != nil && ctx.Err() == nil {
			log.Error("IPAM garbage collector stopped", zap.Error(err))
		}
		return nil
	})
	hlth := newHealth(3 * statusInterval)
	if err := serveJoined(ctx, g, "/livez, /readyz", cfg.HealthAddr, healthHandler(hlth), log); err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	if cfg.MetricsAddr != "" {
		addr, err := metricsAddress(cfg.MetricsAddr, nodeIP)
		if err != nil {
			return err
		}
		if err := serveJoined(ctx, g, "/metrics", addr, metricsHandler(reg), log); err != nil {
			return err
		}
	}

	// Pods whose routes are still in the kernel mean this start follows a
	// restart with forwarding preserved: only then ask peers for GR time.
	eps := m.Endpoints()
	discovered, err := eps.Endpoints()
	if err != nil {
		log.Warn("cannot read existing endpoints from the kernel", zap.Error(err))
	}
	restarting := len(discovered) > 0

	applied := make(chan struct{}, 1)
	var firstApply sync.Once
	dp, err := m.Dataplane(func(r felix.Report) {
		if r.Err == nil { // readiness waits for it: re-plan now, not at the next wake
			firstApply.Do(func() { poke(applied) })
		}
	})
	if err != nil {
		return err
	}
	g.Go(func() error { return dp.Run(ctx) })

	if err := os.MkdirAll(filepath.Dir(cfg.BGPSocket), 0o750); err != nil {
		return fmt.Errorf("create BGP socket directory: %w", err)
	}
	learned, sessions := make(chan bgp.Learned, 1), make(chan struct{}, 1)
	sp := gobgp.New(gobgp.Options{Logger: log, SocketPath: cfg.BGPSocket,
		OnLearned: func(r bgp.Learned) {
			select { // keep only the newest set
			case <-learned:
			default:
			}
			learned <- r
		},
		OnSessionChange: func() { poke(sessions) },
	})
	snap, err := w.Snapshot(ctx)
	if err != nil {
		return err
	}
	asn := localASN(cfg.ASNumber, snap.Local, snap.BGP)
	if err := sp.Start(ctx, bgp.GlobalConfig{RouterID: nodeIP.Addr(), ASN: asn, ListenPort: int32(snap.BGP.ListenPort),
		Restarting: restarting, DeferralTime: learnedDeadline}); err != nil {
		return fmt.Errorf("start BGP speaker: %w", err)
	}
	started := time.Now()
	local := &localStatus{}
	defer func() { // after every goroutine has ended (deferred before the group's wait)
		stopCtx, cancelStop := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancelStop()
		if err := sp.Stop(stopCtx, false); err != nil {
			log.Warn("stop BGP speaker", zap.Error(err))
		}
		now := metav1.Now()
		st := v1.GinghamNodeStatusStatus{AgentVersion: version.Version, AgentState: "Stopping", LastUpdated: &now,
			RoutesLearned: local.get().Status.RoutesLearned}
		local.set(statusObject(cfg.NodeName, st))
		if err := writeStatus(stopCtx, c, cfg.NodeName, st); err != nil {
			log.Warn("write node status", zap.Error(err))
		}
		log.Info("gingham-node stopped; routes left in place for the next start")
	}()
	defer func() { cancel(); _ = g.Wait() }() // runs first: every goroutine ends before the speaker stops
	if ln, err := listenLocalStatus(cfg.StatusSocket); err != nil {
		log.Warn("local status socket unavailable", zap.String("path", cfg.StatusSocket), zap.Error(err))
	} else {
		g.Go(func() error {
			serveLocalStatus(ctx, ln, local, func(ctx context.Context, st *v1.GinghamNodeStatus) {
				fresh, _ := sp.Sessions(ctx)
				now := metav1.Now()
				st.Status.LastUpdated = &now
				st.Status.Sessions, st.Status.RoutesAdvertised = sessionStatus(fresh)
			}, log)
			return nil
		})
	}
	if col, err := sp.Collector(); err == nil {
		reg.MustRegister(col)
	}
	log.Info("agent running", zap.Bool("restarting", restarting), zap.Uint32("asn", asn), zap.String("nodeIP", nodeIP.String()))

	pub := newStatusPublisher(cfg.NodeName, local)
	g.Go(func() error { statusWriter(ctx, c, cfg.NodeName, pub.mailbox, log); return nil })
	l := &loop{log: log, clock: systemClock{}, source: w, secrets: newPasswordCache(c, cfg.Namespace), endpoints: eps,
		cfg: PlanConfig{NodeName: cfg.NodeName, NodeIP: nodeIP, ASN: asn, EnvASN: cfg.ASNumber,
			InterfacePrefix: cfg.InterfacePrefix, ResyncInterval: cfg.ResyncInterval, Started: started},
		app: &applier{log: log, speaker: sp, dp: dp, tunnel: tun, mtu: mtu, status: pub, health: hlth},
		ev:  events{changed: w.changed, learned: learned, sessions: sessions, applied: applied}}
	g.Go(func() error { return l.run(ctx) })
	return g.Wait()
}

// serveJoined serves handler on addr in g until ctx ends; the listener is
// bound before it returns (a bad or busy address is its error).
func serveJoined(ctx context.Context, g *errgroup.Group, what, addr string, handler http.Handler, log *zap.Logger) error {
	_, done, err := serveHTTP(ctx, what, addr, handler, log)
	if err != nil {
		return err
	}
	g.Go(func() error { <-done; return nil })
	return nil
}

// poke signals c without blocking (one pending signal at most).
func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
