package node

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/gingham-net/gingham/api/model"
	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/bgp"
	"github.com/gingham-net/gingham/bgp/gobgp"
	"github.com/gingham-net/gingham/felix"
	"github.com/gingham-net/gingham/internal/kube"
	"github.com/gingham-net/gingham/internal/version"
	"github.com/gingham-net/gingham/ipam"
	"github.com/gingham-net/gingham/ipam/k8sstore"
	"github.com/gingham-net/gingham/ipip"
	"github.com/gingham-net/gingham/node/autodetect"
)

// writeMTU computes the pod MTU from the uplink (or the configured host
// MTU) and the encapsulation in use, and writes it where the CNI plugin
// reads it.
func (a *agent) writeMTU(ipip bool) error {
	detected, iface, err := felix.DetectHostMTU(nil, a.nodeIP.Addr())
	if err != nil && a.cfg.MTU == 0 {
		return fmt.Errorf("detect host MTU (set GINGHAM_MTU): %w", err)
	}
	a.hostMTU = detected
	if a.cfg.MTU != 0 {
		a.hostMTU = a.cfg.MTU
	}
	a.mtuIPIP = ipip
	mtu := felix.PodMTU(detected, a.cfg.MTU, ipip)
	if err := felix.WriteMTU(a.cfg.StateDir, mtu); err != nil {
		return fmt.Errorf("write pod MTU to %s: %w", a.cfg.StateDir, err)
	}
	a.log.Info("pod MTU", zap.Int("mtu", mtu), zap.String("uplink", iface), zap.Int("uplinkMTU", detected), zap.Bool("ipip", ipip))
	return nil
}

// statusInterval is how often the node status resource is rewritten.
const statusInterval = 10 * time.Second

// agent is one running gingham-node. Its run loop is the only goroutine
// that touches learned, lastPeers and the status fields; callbacks from the
// speaker and the informers only poke channels.
type agent struct {
	cfg     Config
	log     *zap.Logger
	client  client.Client
	watch   *watcher
	dp      *felix.Dataplane
	speaker *gobgp.Speaker
	health  *health
	nodeIP  netip.Prefix

	learnedCh chan []bgp.LearnedRoute // latest learned set, capacity 1
	sessionCh chan struct{}
	statusCh  chan v1.GinghamNodeStatusStatus // latest status for statusWriter, capacity 1
	passwords *passwordCache

	learned    []bgp.LearnedRoute
	lastPeers  []bgp.PeerConfig
	lastStatus time.Time
	lastFull   time.Time
	tunnel     *tunnel
	// statusDirty: a session changed state or readiness flipped since the
	// status was last written; it is then written at once, not at the
	// next interval.
	statusDirty bool
	lastReady   bool
	asn         uint32      // the speaker's AS, fixed at start
	local       localStatus // what the local status socket serves
	tunnelUp    bool
	hostMTU     int
	mtuIPIP     bool // the MTU file was last written for IPIP

	// The learned routes are handed to the dataplane only once they are
	// complete: every session up and quiet for remoteQuiet, or
	// remoteDeadline after start. Before that, felix writes nothing, so a
	// restarted agent never deletes routes it has not relearned yet.
	started        time.Time
	learnedAt      time.Time
	remoteComplete bool
	dpApplied      atomic.Bool // the dataplane has applied the desired state once (set by felix's goroutine)
}

const (
	remoteQuiet    = time.Second
	remoteDeadline = 30 * time.Second
)

// Run runs the agent until ctx ends. On the way out it stops the speaker
// the graceful-restart way (no Cease) and leaves every route in the kernel.
func Run(ctx context.Context, cfg Config, log *zap.Logger) error {
	log = log.With(zap.String("node", cfg.NodeName))
	log.Info("gingham-node starting", zap.String("version", version.Version))
	rc, err := RESTConfig(cfg.Kubeconfig)
	if err != nil {
		return err
	}
	c, err := client.New(rc, client.Options{Scheme: kube.Scheme()})
	if err != nil {
		return fmt.Errorf("create API client: %w", err)
	}
	// Every goroutine Run starts beyond here ends with ctx (or stop) and
	// is waited for on the way out.
	ctx, stop := context.WithCancel(ctx)
	var joins []<-chan struct{}
	defer func() {
		stop()
		for _, done := range joins {
			<-done
		}
	}()
	nodeIP, err := nodeAddress(ctx, c, cfg, autodetect.System{}, log)
	if err != nil {
		return err
	}
	if cfg.CNIKubeconfig != "" && cfg.Kubeconfig == "" {
		joins = append(joins, goJoined(func() { newCNIKubeconfig(cfg.CNIKubeconfig, log.Named("cni-kubeconfig")).run(ctx) }))
	}
	if err := registerNode(ctx, c, cfg, nodeIP, log); err != nil {
		return err
	}
	if err := ensureDefaultPool(ctx, c, cfg, log); err != nil {
		return err
	}
	w, err := newWatcher(rc, cfg.NodeName, log)
	if err != nil {
		return err
	}
	if err := w.start(ctx); err != nil {
		return err
	}

	a := &agent{cfg: cfg, log: log, client: c, watch: w, nodeIP: nodeIP, passwords: newPasswordCache(c, cfg.Namespace),
		health: newHealth(3 * statusInterval), learnedCh: make(chan []bgp.LearnedRoute, 1), sessionCh: make(chan struct{}, 1),
		statusCh: make(chan v1.GinghamNodeStatusStatus, 1)}
	if err := a.writeMTU(false); err != nil {
		return err
	}
	a.tunnel = newTunnel(c, ipam.New(k8sstore.New(c), ipam.Options{Logger: log.Named("ipam")}), cfg.NodeName, a.hostMTU, log.Named("ipip"))
	if err := gobgp.ProbeTCPMD5(); err != nil {
		log.Warn("kernel lacks TCP-MD5: BGP peers with passwords cannot establish", zap.Error(err))
	}
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("create API clientset: %w", err)
	}
	gc := ipam.NewGC(k8sstore.New(c), k8sstore.NewCluster(c), kube, cfg.NodeName, log.Named("ipam-gc"),
		ipam.GCOptions{Grace: cfg.IPAMGCGrace, LeaseNamespace: cfg.Namespace})
	go func() {
		if err := gc.Run(ctx); err != nil && ctx.Err() == nil {
			log.Error("IPAM garbage collector stopped", zap.Error(err))
		}
	}()
	_, healthDone, err := serveHTTP(ctx, "/livez, /readyz", cfg.HealthAddr, healthHandler(a.health), log)
	if err != nil {
		return err
	}
	joins = append(joins, healthDone)
	reg := prometheus.NewRegistry()
	if cfg.MetricsAddr != "" {
		addr, err := metricsAddress(cfg.MetricsAddr, nodeIP)
		if err != nil {
			return err
		}
		_, metricsDone, err := serveHTTP(ctx, "/metrics", addr, metricsHandler(reg), log)
		if err != nil {
			return err
		}
		joins = append(joins, metricsDone)
	}

	// Pods whose routes are still in the kernel mean this start follows a
	// restart with forwarding preserved: only then ask peers for GR time.
	discovered, err := felix.DiscoverEndpoints(nil, cfg.InterfacePrefix)
	if err != nil {
		log.Warn("cannot read existing endpoints from the kernel", zap.Error(err))
	}
	restarting := len(discovered) > 0

	a.dp, err = felix.New(felix.WithLogger(log), felix.WithProtocol(cfg.RouteProtocol),
		felix.WithOnApply(func(r felix.Report) {
			if r.Err == nil && !a.dpApplied.Swap(true) {
				poke(a.sessionCh) // re-evaluate readiness now, not at the next tick
			}
		}),
		felix.WithResyncInterval(cfg.ResyncInterval), felix.WithInterfacePrefix(cfg.InterfacePrefix))
	if err != nil {
		return fmt.Errorf("create dataplane: %w", err)
	}
	dpDone := make(chan error, 1)
	go func() { dpDone <- a.dp.Run(ctx) }()

	if err := os.MkdirAll(filepath.Dir(cfg.BGPSocket), 0o750); err != nil {
		return fmt.Errorf("create BGP socket directory: %w", err)
	}
	a.speaker = gobgp.New(gobgp.Options{Logger: log, SocketPath: cfg.BGPSocket,
		OnLearned: func(r []bgp.LearnedRoute) {
			select { // keep only the newest set
			case <-a.learnedCh:
			default:
			}
			a.learnedCh <- r
		},
		OnSessionChange: func() { poke(a.sessionCh) },
	})
	snap, err := w.snapshot(ctx)
	if err != nil {
		return err
	}
	bgpCfg := a.bgpConfig(snap)
	asn := localASN(cfg, snap.Local, bgpCfg)
	a.asn = asn
	if err := a.speaker.Start(ctx, bgp.GlobalConfig{RouterID: nodeIP.Addr(), ASN: asn,
		ListenPort: int32(bgpCfg.ListenPort), Restarting: restarting}); err != nil {
		return fmt.Errorf("start BGP speaker: %w", err)
	}
	serveLocalStatus(ctx, cfg.StatusSocket, &a.local, func(ctx context.Context, st *v1.GinghamNodeStatus) {
		fresh := a.buildStatus(ctx, st.Status.AgentState, int(st.Status.RoutesLearned), st.Status.UnavailablePools)
		st.Status.Sessions, st.Status.LastUpdated, st.Status.RoutesAdvertised = fresh.Sessions, fresh.LastUpdated, fresh.RoutesAdvertised
	}, log)
	if col, err := a.speaker.Collector(); err == nil {
		reg.MustRegister(col)
	}
	log.Info("agent running", zap.Bool("restarting", restarting), zap.Uint32("asn", asn), zap.String("nodeIP", nodeIP.String()))

	writerCtx, stopWriter := context.WithCancel(ctx)
	defer stopWriter()
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		a.statusWriter(writerCtx)
	}()
	loopErr := a.loop(ctx)
	stopWriter() // the loop may also end with an error while ctx lives

	stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.speaker.Stop(stopCtx, false); err != nil {
		log.Warn("stop BGP speaker", zap.Error(err))
	}
	<-writerDone // the last status written is this one
	st := a.buildStatus(stopCtx, "Stopping", len(a.learned), nil)
	a.local.set(statusObject(cfg.NodeName, st))
	if err := writeStatus(stopCtx, c, cfg.NodeName, st); err != nil {
		log.Warn("write node status", zap.Error(err))
	}
	if err := <-dpDone; err != nil && loopErr == nil {
		loopErr = err
	}
	log.Info("gingham-node stopped; routes left in place for the next start")
	return loopErr
}

// goJoined runs fn in a goroutine; the channel is closed when it returns.
func goJoined(fn func()) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	return done
}

func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// loop recomputes the desired state on every change and periodically.
func (a *agent) loop(ctx context.Context) error {
	tick := time.NewTicker(remoteQuiet) // slowed to statusInterval once routes are complete
	defer tick.Stop()
	a.started = time.Now()
	a.sync(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-a.watch.changed:
		case a.learned = <-a.learnedCh:
			a.learnedAt = time.Now()
		case <-a.sessionCh:
			a.statusDirty = true
		case <-tick.C:
		}
		// Coalesce bursts of informer events into one pass.
		time.Sleep(20 * time.Millisecond)
		wasComplete := a.remoteComplete
		a.sync(ctx)
		if a.remoteComplete && !wasComplete {
			tick.Reset(statusInterval)
		}
	}
}

func (a *agent) bgpConfig(s Snapshot) model.BGPConfig {
	var def, node *v1.BGPConfiguration
	for i := range s.BGPConfigs {
		switch s.BGPConfigs[i].Name {
		case v1.DefaultBGPConfigName:
			def = &s.BGPConfigs[i]
		case v1.NodeBGPConfigPrefix + a.cfg.NodeName:
			node = &s.BGPConfigs[i]
		}
	}
	cfg, err := model.BGPConfigFromAPI(def, node)
	if err != nil {
		a.log.Error("invalid BGPConfiguration; using defaults", zap.Error(err))
		cfg = model.DefaultBGPConfig()
	}
	if !meshRestartTimeSet(def) && !meshRestartTimeSet(node) {
		cfg.MeshRestartTime = a.cfg.RestartTime // GINGHAM_GRACEFUL_RESTART_TIME
	}
	return cfg
}

func meshRestartTimeSet(c *v1.BGPConfiguration) bool {
	return c != nil && c.Spec.NodeMeshMaxRestartTime != nil
}

// peerModels translates the BGPPeers; those without maxRestartTime get the
// agent's graceful-restart time (GINGHAM_GRACEFUL_RESTART_TIME).
func (a *agent) peerModels(in []v1.BGPPeer) []model.Peer {
	peers, errs := model.Peers(in)
	for _, e := range errs {
		a.log.Warn("ignoring invalid BGPPeer", zap.Error(e))
	}
	explicit := map[string]bool{}
	for _, p := range in {
		explicit[p.Name] = p.Spec.MaxRestartTime != nil
	}
	for i := range peers {
		if !explicit[peers[i].Name] {
			peers[i].RestartTime = a.cfg.RestartTime
		}
	}
	return peers
}

// sync computes the desired state from the caches and hands it to the
// dataplane and the speaker.
func (a *agent) sync(ctx context.Context) {
	s, err := a.watch.snapshot(ctx)
	if err != nil {
		a.health.set(false, "read API caches: "+err.Error())
		return
	}
	for _, p := range s.Problems {
		a.log.Warn("ignoring invalid object", zap.Error(p))
	}
	local := s.Local
	if !local.IPv4.IsValid() { // our own annotation not yet in the cache
		local.Name, local.IPv4 = a.cfg.NodeName, a.nodeIP
	}
	bgpCfg := a.bgpConfig(s)
	var problems []string
	if want := localASN(a.cfg, local, bgpCfg); want != a.asn {
		// GoBGP's global AS is fixed while it runs: keep serving with the
		// running one, unready, until a restart applies the new one.
		a.log.Error("this node's AS number changed; restart the agent to apply it",
			zap.Uint32("running", a.asn), zap.Uint32("configured", want))
		problems = append(problems, fmt.Sprintf("AS number changed from %d to %d: restart the agent to apply it", a.asn, want))
	}
	local.ASNumber = a.asn
	peers := bgp.DesiredPeers(local, s.Nodes, a.peerModels(s.BGPPeers), bgpCfg)
	peers = a.resolvePasswords(ctx, peers)
	podIPs := make([]netip.Addr, 0, len(s.LocalPods))
	for _, p := range s.LocalPods {
		podIPs = append(podIPs, p.IP)
	}
	poolCIDRs := make([]netip.Prefix, 0, len(s.Pools))
	for _, p := range s.Pools {
		poolCIDRs = append(poolCIDRs, p.CIDR)
	}
	desired := bgp.Desired{Peers: peers, Paths: bgp.DesiredPaths(local, affinities(s.LocalBlocks), podIPs, s.Pools, bgpCfg), PoolCIDRs: poolCIDRs}
	if err := a.speaker.Reconcile(ctx, desired); err != nil {
		a.log.Warn("BGP reconcile incomplete; will retry", zap.Error(err))
		problems = append(problems, "bgp: "+err.Error())
	}
	a.lastPeers = peers

	full := time.Since(a.lastFull) >= a.cfg.ResyncInterval
	if full {
		a.lastFull = time.Now()
	}
	a.tunnelUp = a.tunnel.sync(ctx, local, s.Nodes, s.Pools, full)
	if want := ipip.Enabled(s.Pools) && a.tunnelUp; want != a.mtuIPIP {
		if err := a.writeMTU(want); err != nil {
			problems = append(problems, err.Error())
		}
	}
	discovered, err := felix.DiscoverEndpoints(nil, a.cfg.InterfacePrefix)
	if err != nil {
		a.log.Warn("read endpoints from the kernel", zap.Error(err))
	}
	vethName := func(ns, pod string) string { return felix.HostVethName(a.cfg.InterfacePrefix, ns, pod) }
	routes, unavailable := remoteRoutes(a.learned, peers, s.Pools, bgpCfg.ServiceClusterIPs, local, a.tunnelUp)
	if !a.tunnelUp {
		for name := range ipipPools(s.Pools) {
			unavailable[name] = true
		}
	}
	sets := []error{
		a.dp.SetLocalEndpoints(ctx, localEndpoints(s.LocalPods, discovered, vethName)),
		a.dp.SetLocalBlocks(ctx, s.LocalBlocks),
		a.dp.SetNATPools(ctx, natPools(s.Pools)),
	}
	if a.learnedComplete(ctx) {
		sets = append(sets, a.dp.SetRemoteRoutes(ctx, routes))
	}
	for _, set := range sets {
		if set != nil && ctx.Err() == nil {
			problems = append(problems, "dataplane: "+set.Error())
		}
	}

	ready, detail := a.readiness(ctx)
	switch {
	case !a.remoteComplete:
		ready, detail = false, "waiting for the learned routes to be complete before programming the kernel"
	case !a.dpApplied.Load():
		ready, detail = false, "waiting for the first dataplane apply"
	}
	if len(problems) > 0 {
		ready, detail = false, strings.Join(problems, "; ")
	}
	if len(unavailable) > 0 {
		detail += fmt.Sprintf("; IPIP pools not served on this node (%s): %s", a.tunnel.reason, strings.Join(sortedKeys(unavailable), ", "))
	}
	a.health.set(ready, detail)
	if ready != a.lastReady {
		a.statusDirty, a.lastReady = true, ready
	}
	if a.statusDirty || time.Since(a.lastStatus) >= statusInterval {
		a.statusDirty = false
		state := "Ready"
		if !ready {
			state = "Degraded"
		}
		a.writeStatus(ctx, state, unavailableList(unavailable, s.Pools, a.tunnel.reason))
	}
}

// learnedComplete reports whether the learned routes can be trusted as the
// whole set (see agent.remoteComplete); once true it stays true.
func (a *agent) learnedComplete(ctx context.Context) bool {
	if a.remoteComplete {
		return true
	}
	if time.Since(a.started) >= remoteDeadline {
		a.log.Warn("programming learned routes before every BGP session is up", zap.Duration("after", remoteDeadline))
		a.remoteComplete = true
		return true
	}
	sessions, err := a.speaker.Sessions(ctx)
	if err != nil {
		return false
	}
	last := a.learnedAt
	for _, s := range sessions {
		// A peer's initial table follows its session coming up: wait
		// for every session to have been up for a quiet while too.
		if s.State != bgp.StateEstablished {
			return false
		}
		if s.Since.After(last) {
			last = s.Since
		}
	}
	if last.Before(a.started) {
		last = a.started
	}
	if time.Since(last) < remoteQuiet {
		return false
	}
	a.remoteComplete = true
	a.log.Info("learned routes complete; programming them", zap.Int("routes", len(a.learned)), zap.Duration("after", time.Since(a.started).Round(time.Millisecond)))
	return true
}

// readiness is ready when every session that should be up is Established,
// as Calico's readiness probe checks BIRD.
func (a *agent) readiness(ctx context.Context) (bool, string) {
	sessions, err := a.speaker.Sessions(ctx)
	if err != nil {
		return false, "bgp sessions: " + err.Error()
	}
	var down []string
	for _, s := range sessions {
		if s.State != bgp.StateEstablished {
			down = append(down, fmt.Sprintf("%s (%s) %s", s.Peer, s.Type, s.State))
		}
	}
	if len(down) > 0 {
		return false, "BGP not established with " + strings.Join(down, ", ")
	}
	return true, fmt.Sprintf("ok: %d BGP sessions established", len(sessions))
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func unavailableList(names map[string]bool, pools []model.Pool, reason string) []v1.PoolCondition {
	var out []v1.PoolCondition
	for _, p := range pools {
		if names[p.Name] {
			out = append(out, v1.PoolCondition{Pool: p.Name, Reason: "IPIPUnavailable",
				Message: fmt.Sprintf("pool %s asks for IPIP (%s) but this node cannot tunnel: %s", p.Name, p.IPIPMode, reason)})
		}
	}
	return out
}

// resolvePasswords fills each peer's TCP-MD5 password from its Secret in the
// agent's namespace. A missing Secret leaves the peer out (it could never
// establish) and is logged without the password; an unreadable one keeps
// the password last read (see passwordCache).
func (a *agent) resolvePasswords(ctx context.Context, peers []bgp.PeerConfig) []bgp.PeerConfig {
	out := peers[:0:0]
	for _, p := range peers {
		if p.PasswordRef.IsSet() {
			data, err := a.passwords.get(ctx, p.PasswordRef.Name)
			val, ok := data[p.PasswordRef.Key]
			if !ok {
				a.log.Warn("BGP password secret unavailable; peer skipped", zap.String("peer", p.String()),
					zap.String("secret", a.cfg.Namespace+"/"+p.PasswordRef.Name), zap.String("key", p.PasswordRef.Key), zap.NamedError("cause", err))
				continue
			}
			if err != nil {
				a.log.Warn("BGP password secret unreadable; keeping the password last read", zap.String("peer", p.String()),
					zap.String("secret", a.cfg.Namespace+"/"+p.PasswordRef.Name), zap.NamedError("cause", err))
			}
			p.Password = string(val)
		}
		out = append(out, p)
	}
	return out
}

// buildStatus reads the speaker's sessions into a status.
func (a *agent) buildStatus(ctx context.Context, state string, learned int, unavailable []v1.PoolCondition) v1.GinghamNodeStatusStatus {
	sessions, _ := a.speaker.Sessions(ctx)
	now := metav1.Now()
	st := v1.GinghamNodeStatusStatus{AgentVersion: version.Version, AgentState: state, LastUpdated: &now,
		RoutesLearned: int64(learned), UnavailablePools: unavailable}
	sort.Slice(sessions, func(i, j int) bool { return sessions[i].Peer.Less(sessions[j].Peer) })
	for _, s := range sessions {
		since := metav1.NewTime(s.Since)
		st.Sessions = append(st.Sessions, v1.BGPSessionStatus{PeerAddress: s.Peer.String(), PeerType: string(s.Type),
			State: string(s.State), Since: &since, Info: s.Info, PrefixesReceived: int64(s.Received), PrefixesAdvertised: int64(s.Advertised)})
		st.RoutesAdvertised = max(st.RoutesAdvertised, int64(s.Advertised))
	}
	return st
}

// writeStatus publishes this node's sessions and counters: to the local
// status socket at once, and to the API through statusWriter, so the loop
// never waits for the API server.
func (a *agent) writeStatus(ctx context.Context, state string, unavailable []v1.PoolCondition) {
	st := a.buildStatus(ctx, state, len(a.learned), unavailable)
	a.local.set(statusObject(a.cfg.NodeName, st))
	select { // keep only the newest status
	case <-a.statusCh:
	default:
	}
	a.statusCh <- st
	a.lastStatus = time.Now()
}

// statusRetry is how soon a failed status write is tried again.
const statusRetry = time.Second

// statusWriter writes the newest status handed over by writeStatus to the
// API until ctx ends, retrying a failed write every statusRetry until it
// succeeds or a newer status replaces it. It is the only goroutine writing
// the status object while the loop runs: an API outage (every write then
// takes client-go's retries, ~10s) delays the status, never the routes.
func (a *agent) statusWriter(ctx context.Context) {
	var pending *v1.GinghamNodeStatusStatus
	for {
		var retry <-chan time.Time
		if pending != nil {
			retry = time.After(statusRetry)
		}
		select {
		case <-ctx.Done():
			return
		case st := <-a.statusCh:
			pending = &st
		case <-retry:
		}
		now := metav1.Now()
		pending.LastUpdated = &now // when it reached the API
		if err := writeStatus(ctx, a.client, a.cfg.NodeName, *pending); err != nil {
			if ctx.Err() == nil {
				a.log.Warn("write node status", zap.Error(err))
			}
			continue
		}
		pending = nil
	}
}

// localASN is this node's AS: GINGHAM_AS when set, else its Node's
// gingham.dev/ASNumber annotation, else the cluster's.
func localASN(cfg Config, local model.Node, bgpCfg model.BGPConfig) uint32 {
	switch {
	case cfg.ASNumber != 0:
		return cfg.ASNumber
	case local.ASNumber != 0:
		return local.ASNumber
	}
	return bgpCfg.ASNumber
}
