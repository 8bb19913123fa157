package felix

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/gingham-net/gingham/felix/nat"
	"github.com/gingham-net/gingham/felix/routetable"
	"github.com/gingham-net/gingham/internal/netlinkx"
	"github.com/gingham-net/gingham/internal/netns"
)

// Defaults.
const (
	DefaultResyncInterval   = 90 * time.Second
	DefaultMinApplyInterval = 100 * time.Millisecond
	DefaultInterfacePrefix  = "cali"
)

// Report describes one apply; see WithOnApply.
type Report struct {
	Routes routetable.Result
	Full   bool // periodic resync (sysctls, neighbours and NAT reasserted)
	Err    error
}

// Option configures a Dataplane.
type Option func(*Dataplane)

// WithNetNS runs the dataplane against another network namespace (the
// caller keeps ns open while Run runs). Default: the caller's namespace.
func WithNetNS(ns *netns.NS) Option { return func(d *Dataplane) { d.ns = ns } }

// WithProtocol sets the route protocol that marks our routes (default 96).
func WithProtocol(p int) Option { return func(d *Dataplane) { d.proto = p } }

// WithLogger sets the logger (default silent).
func WithLogger(l *zap.Logger) Option { return func(d *Dataplane) { d.log = l } }

// WithResyncInterval sets the period of full resyncs (default 90s).
func WithResyncInterval(iv time.Duration) Option { return func(d *Dataplane) { d.resync = iv } }

// WithMinApplyInterval throttles applies (default 100ms).
func WithMinApplyInterval(iv time.Duration) Option { return func(d *Dataplane) { d.minApply = iv } }

// WithInterfacePrefix sets the workload veth prefix (default "cali").
func WithInterfacePrefix(p string) Option { return func(d *Dataplane) { d.ifacePrefix = p } }

// WithGracePeriod sets how long our routes on a new workload interface
// survive without an endpoint (default routetable.DefaultGracePeriod).
func WithGracePeriod(g time.Duration) Option { return func(d *Dataplane) { d.grace = g } }

// WithNATTable names the owned nftables table (default "gingham").
func WithNATTable(name string) Option { return func(d *Dataplane) { d.natTable = name } }

// WithOnApply registers a callback run on the owner goroutine after every
// apply (readiness, metrics, tests). It must not block.
func WithOnApply(f func(Report)) Option { return func(d *Dataplane) { d.onApply = f } }

// Dataplane programs this node's kernel. Create it with New, start Run once,
// and feed it with the Set methods from any goroutine.
type Dataplane struct {
	ns          *netns.NS
	proto       int
	log         *zap.Logger
	resync      time.Duration
	minApply    time.Duration
	ifacePrefix string
	grace       time.Duration
	natTable    string
	onApply     func(Report)

	inbox   chan func(*state)
	done    chan struct{}
	running atomic.Bool
}

// New returns a Dataplane; it does nothing until Run.
func New(opts ...Option) (*Dataplane, error) {
	d := &Dataplane{
		proto: routetable.DefaultProtocol, log: zap.NewNop(), resync: DefaultResyncInterval,
		minApply: DefaultMinApplyInterval, ifacePrefix: DefaultInterfacePrefix,
		grace: routetable.DefaultGracePeriod, natTable: nat.DefaultTable,
		inbox: make(chan func(*state), 16), done: make(chan struct{}),
	}
	for _, o := range opts {
		o(d)
	}
	switch {
	case d.proto < 5 || d.proto > 254:
		return nil, fmt.Errorf("new dataplane: route protocol %d must be 5..254", d.proto)
	case d.resync <= 0 || d.minApply < 0:
		return nil, errors.New("new dataplane: intervals must be positive")
	case d.ifacePrefix == "":
		return nil, errors.New("new dataplane: empty interface prefix")
	}
	return d, nil
}

// state is owned by Run's goroutine.
type state struct {
	eps    []Endpoint
	blocks []netip.Prefix
	remote []Route
	// remoteComplete: remote is the whole learned set; until then our
	// learned routes missing from it are kept (see SetRemoteRoutes).
	remoteComplete bool
	pools          []nat.Pool
	have           uint8 // bit per input received
	dirty          bool
	full           bool
	// desired prefixes of the last apply, to spot our routes deleted by others
	desired map[netip.Prefix]struct{}
	// workload links whose sysctls are set, by index
	configured map[int]bool
}

const (
	haveEndpoints = 1 << iota
	haveBlocks
	haveRemote
	havePools
	haveAll = haveEndpoints | haveBlocks | haveRemote | havePools
)

// ErrStopped is returned by the Set methods after Run has returned.
var ErrStopped = errors.New("dataplane stopped")

func (d *Dataplane) send(ctx context.Context, f func(*state)) error {
	select {
	case d.inbox <- f:
		return nil
	case <-d.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SetLocalEndpoints replaces the set of pods on this node.
func (d *Dataplane) SetLocalEndpoints(ctx context.Context, eps []Endpoint) error {
	eps = slices.Clone(eps)
	return d.send(ctx, func(s *state) { s.eps, s.have, s.dirty = eps, s.have|haveEndpoints, true })
}

// SetLocalBlocks replaces the IPAM blocks affine to this node (blackholed).
func (d *Dataplane) SetLocalBlocks(ctx context.Context, blocks []netip.Prefix) error {
	blocks = slices.Clone(blocks)
	return d.send(ctx, func(s *state) { s.blocks, s.have, s.dirty = blocks, s.have|haveBlocks, true })
}

// SetRemoteRoutes replaces the routes learned from BGP peers. complete
// false says the learned set may still grow (after a restart, before every
// peer has sent its table): the routes are programmed at once, but our
// learned routes (those with a gateway) missing from them are kept until a
// complete set arrives. Local state is never held back by it.
func (d *Dataplane) SetRemoteRoutes(ctx context.Context, routes []Route, complete bool) error {
	routes = slices.Clone(routes)
	return d.send(ctx, func(s *state) {
		s.remote, s.remoteComplete, s.have, s.dirty = routes, complete, s.have|haveRemote, true
	})
}

// learnedRoute tells our learned routes in the kernel from the local ones
// (pod /32s on their veth, blackholes): only they have a gateway.
func learnedRoute(r *netlinkx.Route) bool {
	return r.Type == netlinkx.RouteUnicast && (r.Path.Gw.IsValid() || len(r.MultiPath) > 0)
}

// SetNATPools replaces the pools natOutgoing is computed from.
func (d *Dataplane) SetNATPools(ctx context.Context, pools []nat.Pool) error {
	pools = slices.Clone(pools)
	return d.send(ctx, func(s *state) { s.pools, s.have, s.dirty = pools, s.have|havePools, true })
}

// Resync asks for a full resync as soon as the throttle allows.
func (d *Dataplane) Resync(ctx context.Context) error {
	return d.send(ctx, func(s *state) { s.dirty, s.full = true, true })
}

func (d *Dataplane) nsFd() int {
	if d.ns == nil {
		return -1
	}
	return d.ns.Fd()
}

// Run owns the dataplane until ctx ends. It returns an error only when it
// cannot start; apply failures are logged and retried.
func (d *Dataplane) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return errors.New("run dataplane: already running")
	}
	defer close(d.done)
	h, err := netlinkx.Open(d.nsFd())
	if err != nil {
		return fmt.Errorf("run dataplane: %w", err)
	}
	defer h.Close()
	rt := routetable.New(h, routetable.WithProtocol(d.proto), routetable.WithLogger(d.log),
		routetable.WithInterfacePrefix(d.ifacePrefix), routetable.WithGracePeriod(d.grace))
	nm := nat.New(d.nsFd(), nat.WithTable(d.natTable), nat.WithLogger(d.log))

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := make(chan netlinkx.Event, 256)
	if err := h.Subscribe(sctx, events); err != nil {
		d.log.Warn("netlink subscription failed; relying on periodic resync", zap.Error(err))
	}
	ticker := time.NewTicker(d.resync)
	defer ticker.Stop()

	st := &state{full: true, configured: map[int]bool{}}
	var (
		lastApply time.Time
		wake      <-chan time.Time
	)
	for {
		select {
		case <-ctx.Done():
			return nil
		case f := <-d.inbox:
			f(st)
		case ev := <-events:
			if d.relevant(st, &ev) {
				st.dirty = true
			}
		case <-ticker.C:
			st.dirty, st.full = true, true
		case <-wake:
			wake = nil
		}
		if !st.dirty || st.have != haveAll || wake != nil {
			continue
		}
		if wait := d.minApply - time.Since(lastApply); wait > 0 {
			wake = time.After(wait)
			continue
		}
		lastApply = time.Now()
		rep := d.apply(st, h, rt, nm)
		if rep.Err != nil {
			d.log.Warn("dataplane apply failed; will retry", zap.Error(rep.Err))
			st.dirty = true
			wake = time.After(time.Second)
		}
		if d.onApply != nil {
			d.onApply(rep)
		}
	}
}

// relevant filters kernel events down to those that may need an apply.
func (d *Dataplane) relevant(st *state, ev *netlinkx.Event) bool {
	switch ev.Kind {
	case netlinkx.EventLink:
		return true // a veth or uplink came, went, or changed state
	case netlinkx.EventRoute:
		if !ev.Deleted || ev.Route.Protocol != d.proto {
			return false
		}
		_, want := st.desired[ev.Route.Dst]
		return want // one of ours vanished behind our back
	case netlinkx.EventError:
		d.log.Warn("netlink subscription error; resyncing", zap.Error(ev.Err))
		st.full = true
		return true
	}
	return false
}

func (d *Dataplane) apply(st *state, h *netlinkx.Handle, rt *routetable.RouteTable, nm *nat.Manager) Report {
	rep := Report{Full: st.full}
	var errs []error
	targets := DesiredRoutes(st.eps, st.blocks, st.remote)
	if st.remoteComplete {
		rt.Retain(nil)
	} else {
		rt.Retain(learnedRoute)
	}
	if err := rt.SetRoutes(targets); err != nil {
		d.log.Warn("invalid routes ignored", zap.Error(err))
	}
	st.desired = make(map[netip.Prefix]struct{}, len(targets))
	for _, t := range targets {
		st.desired[t.Dst] = struct{}{}
	}
	var err error
	if rep.Routes, err = rt.Apply(); err != nil {
		errs = append(errs, err)
	}
	if err := d.programEndpoints(st, h); err != nil {
		errs = append(errs, err)
	}
	if err := nm.Apply(st.pools, st.full); err != nil {
		errs = append(errs, err)
	}
	rep.Err = errors.Join(errs...)
	st.dirty = false
	if rep.Err == nil {
		st.full = false
	}
	return rep
}
