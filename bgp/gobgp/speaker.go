package gobgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/metrics"
	"github.com/osrg/gobgp/v4/pkg/server"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/gingham-net/gingham/bgp"
	"github.com/gingham-net/gingham/internal/logging"
)

// DefaultDeferralTime bounds how long a restarting speaker holds its
// UPDATEs waiting for peers' End-of-RIB.
const DefaultDeferralTime = 30 * time.Second

// learnedSettle is how long a burst of learned-route changes may go on
// before OnLearned sees it: the added latency of one route.
const learnedSettle = 100 * time.Millisecond

// ErrNotStarted is returned by methods called before Start or after Stop.
var ErrNotStarted = errors.New("bgp speaker not running")

// Options configure a Speaker. The zero value is valid: silent, no gRPC.
type Options struct {
	// Logger receives the speaker's and GoBGP's logs (default: none).
	Logger *zap.Logger
	// SocketPath is the unix socket of GoBGP's gRPC API, e.g.
	// /var/run/gingham/bgp.sock. Empty: no gRPC API at all.
	SocketPath string
	// OnLearned receives the full set of learned best routes and the
	// peers' End-of-RIBs whenever they change (coalesced; never called
	// concurrently). It must not block for long: updates are coalesced
	// while it runs.
	OnLearned func(bgp.Learned)
	// OnSessionChange is poked (coalesced) when a session changes state.
	OnSessionChange func()
}

// Speaker is an embedded GoBGP server behind bgp.Router. Its methods are
// safe for concurrent use; Reconcile and Stop are serialized.
type Speaker struct {
	opts Options
	log  *zap.Logger

	mu       sync.Mutex // serializes Start/Reconcile/Stop and guards below
	srv      *server.BgpServer
	global   bgp.GlobalConfig
	started  time.Time
	peers    map[netip.Addr]bgp.PeerConfig // running, as configured
	paths    map[netip.Prefix]runningPath
	policy   importPolicy
	policyOK bool // policy has been installed at least once
	cancel   context.CancelFunc
	done     chan struct{}

	learned *learnedTable
}

var _ bgp.Router = (*Speaker)(nil)

// New returns a stopped speaker.
func New(opts Options) *Speaker {
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return &Speaker{opts: opts, log: log.Named("bgp"), learned: newLearnedTable()}
}

// Start starts GoBGP with g, installs the import policy and begins watching
// best paths and sessions. It fails if already started.
func (s *Speaker) Start(ctx context.Context, g bgp.GlobalConfig) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return errors.New("start bgp speaker: already started")
	}
	if !g.RouterID.Is4() {
		return fmt.Errorf("start bgp speaker: router ID %v is not an IPv4 address", g.RouterID)
	}
	if g.DeferralTime == 0 {
		g.DeferralTime = DefaultDeferralTime
	}
	lvl := new(slog.LevelVar)
	lvl.Set(slog.LevelInfo)
	if !s.log.Core().Enabled(zap.InfoLevel) {
		lvl.Set(slog.LevelError + 4) // keep GoBGP quiet when we are
	}
	sopts := []server.ServerOption{server.LoggerOption(logging.Slog(s.log.Named("gobgp")), lvl)}
	if p := s.opts.SocketPath; p != "" {
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			return fmt.Errorf("start bgp speaker: socket directory: %w", err)
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("start bgp speaker: remove stale socket: %w", err)
		}
		sopts = append(sopts, server.GrpcListenAddress("unix://"+p))
	}
	srv := server.NewBgpServer(sopts...)
	go srv.Serve()
	defer func() {
		if err != nil {
			srv.Stop()
		}
	}()
	global := &api.Global{
		Asn:              g.ASN,
		RouterId:         g.RouterID.String(),
		ListenPort:       g.ListenPort,
		UseMultiplePaths: true,
	}
	for _, a := range g.ListenAddrs {
		global.ListenAddresses = append(global.ListenAddresses, a.String())
	}
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: global}); err != nil {
		return fmt.Errorf("start bgp speaker: %w", err)
	}
	// Policy before paths and peers: nothing is learned unfiltered.
	if err := installPolicy(ctx, srv, importPolicy{}, true); err != nil {
		return fmt.Errorf("start bgp speaker: %w", err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	s.learned.reset()
	// One watcher for all three: GoBGP hands them to one goroutine in
	// the order it handled the peers' messages (see learnedTable).
	if err := srv.WatchEvent(wctx, server.WatchEventMessageCallbacks{
		OnBestPath:   s.learned.apply,
		OnPathEor:    s.learned.endOfRIB,
		OnPeerUpdate: s.learned.peerEvent,
	}, server.WatchBestPath(true), server.WatchEor(false), server.WatchPeer()); err != nil {
		cancel()
		return fmt.Errorf("start bgp speaker: watch: %w", err)
	}
	s.srv, s.global, s.started, s.cancel = srv, g, time.Now(), cancel
	s.peers, s.paths, s.policy, s.policyOK = map[netip.Addr]bgp.PeerConfig{}, map[netip.Prefix]runningPath{}, importPolicy{}, true
	s.done = make(chan struct{})
	go s.deliver(wctx, s.learned, s.done)
	s.log.Info("bgp speaker started", zap.Stringer("routerID", g.RouterID), zap.Uint32("asn", g.ASN),
		zap.Int32("port", g.ListenPort), zap.Bool("restarting", g.Restarting), zap.String("socket", s.opts.SocketPath))
	return nil
}

// deliver hands coalesced learned-route and session updates to the
// callbacks; it is the only goroutine that calls them.
func (s *Speaker) deliver(ctx context.Context, t *learnedTable, done chan struct{}) {
	defer close(done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.routesChanged:
			// GoBGP reports best paths a few at a time: let a burst
			// settle so a 10k-route table is copied a handful of times,
			// not once per event (which made ingest quadratic).
			select {
			case <-ctx.Done():
				return
			case <-time.After(learnedSettle):
			}
			select {
			case <-t.routesChanged:
			default:
			}
			if s.opts.OnLearned != nil {
				s.opts.OnLearned(t.snapshot())
			}
		case <-t.peersChanged:
			if s.opts.OnSessionChange != nil {
				s.opts.OnSessionChange()
			}
		}
	}
}

// Learned returns the current learned best routes, sorted by prefix, and
// the peers' End-of-RIBs.
func (s *Speaker) Learned() bgp.Learned { return s.learned.snapshot() }

// Collector returns GoBGP's Prometheus collector (peer states, flaps,
// routes received/accepted/advertised) for the caller to register. It
// must be called after Start.
func (s *Speaker) Collector() (prometheus.Collector, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return nil, ErrNotStarted
	}
	return metrics.NewBgpCollector(s.srv), nil
}

// Stop stops the speaker. withdraw false is a planned restart: sessions
// with graceful restart are closed without a NOTIFICATION, so peers keep
// our routes (stale) for the restart time. withdraw true sends every peer
// a Cease, and they withdraw our routes at once.
func (s *Speaker) Stop(ctx context.Context, withdraw bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return ErrNotStarted
	}
	var err error
	if !withdraw {
		if e := s.srv.StopBgp(ctx, &api.StopBgpRequest{AllowGracefulRestart: true}); e != nil {
			err = fmt.Errorf("stop bgp speaker: %w", e)
		}
	}
	// Stop sends Cease to the peers still configured (all of them when
	// withdrawing) and ends the gRPC server. After a graceful StopBgp it
	// only logs that BGP is already stopped.
	s.srv.Stop()
	s.cancel()
	<-s.done
	if p := s.opts.SocketPath; p != "" {
		if e := os.Remove(p); e != nil && !errors.Is(e, os.ErrNotExist) {
			err = errors.Join(err, fmt.Errorf("stop bgp speaker: remove socket: %w", e))
		}
	}
	s.srv = nil
	s.log.Info("bgp speaker stopped", zap.Bool("withdraw", withdraw))
	return err
}
