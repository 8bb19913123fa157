package routetable

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/gingham-net/gingham/internal/netlinkx"
)

// Kernel is what the table needs from netlink (netlinkx.Handle satisfies it).
type Kernel interface {
	RouteEach(f netlinkx.RouteFilter, fn func(*netlinkx.Route), reset func()) error
	RouteReplace(r *netlinkx.Route) error
	RouteDel(r *netlinkx.Route) error
	LinkList() ([]netlinkx.Link, error)
}

var _ Kernel = (*netlinkx.Handle)(nil)

// Defaults.
const (
	DefaultProtocol    = 96
	DefaultGracePeriod = 10 * time.Second
)

// Option configures a RouteTable.
type Option func(*RouteTable)

// WithProtocol sets the protocol number that marks our routes.
func WithProtocol(p int) Option { return func(t *RouteTable) { t.proto = p } }

// WithTable sets the kernel table (default main).
func WithTable(table int) Option { return func(t *RouteTable) { t.table = table } }

// WithLogger sets the logger (default: silent).
func WithLogger(l *zap.Logger) Option { return func(t *RouteTable) { t.log = l } }

// WithGracePeriod sets how long our routes on a newly seen workload
// interface are kept without being desired.
func WithGracePeriod(d time.Duration) Option { return func(t *RouteTable) { t.grace = d } }

// WithInterfacePrefix sets the workload interface prefix the grace period
// applies to (default "cali").
func WithInterfacePrefix(p string) Option { return func(t *RouteTable) { t.ifacePrefix = p } }

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option { return func(t *RouteTable) { t.now = now } }

// RouteTable programs one kernel table. It is not safe for concurrent use:
// one goroutine owns it.
type RouteTable struct {
	k           Kernel
	log         *zap.Logger
	proto       int
	table       int
	grace       time.Duration
	ifacePrefix string
	now         func() time.Time

	desired   []Target
	retain    func(*netlinkx.Route) bool // see Retain; nil: none
	firstSeen map[int]time.Time          // workload link index → when first seen
	conflicts map[netip.Prefix]int       // prefix → foreign protocol already logged

	// Scratch space reused by every Apply (cleared, never shared outside
	// it), so a no-op resync of a large table allocates little.
	scratch struct {
		desired map[netip.Prefix]netlinkx.Route
		owned   []netlinkx.Route
		foreign map[netip.Prefix]int
		matched map[netip.Prefix]bool
		byName  map[string]netlinkx.Link
		present map[int]bool
	}
}

// New returns a table with nothing desired; the first Apply before any
// SetRoutes would delete all our routes, so set routes first.
func New(k Kernel, opts ...Option) *RouteTable {
	t := &RouteTable{
		k: k, log: zap.NewNop(), proto: DefaultProtocol, table: netlinkx.TableMain,
		grace: DefaultGracePeriod, ifacePrefix: "cali", now: time.Now,
		firstSeen: map[int]time.Time{}, conflicts: map[netip.Prefix]int{},
	}
	t.scratch.desired = map[netip.Prefix]netlinkx.Route{}
	t.scratch.foreign = map[netip.Prefix]int{}
	t.scratch.matched = map[netip.Prefix]bool{}
	t.scratch.byName = map[string]netlinkx.Link{}
	t.scratch.present = map[int]bool{}
	for _, o := range opts {
		o(t)
	}
	return t
}

// Protocol is the protocol number of our routes.
func (t *RouteTable) Protocol() int { return t.proto }

// SetRoutes replaces the desired set. Invalid targets are dropped and
// reported; the rest are kept. A prefix given twice keeps the first.
func (t *RouteTable) SetRoutes(ts []Target) error {
	var errs []error
	t.desired = t.desired[:0]
	seen := make(map[netip.Prefix]struct{}, len(ts))
	for _, x := range ts {
		if err := x.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := seen[x.Dst]; dup {
			continue
		}
		seen[x.Dst] = struct{}{}
		t.desired = append(t.desired, x)
	}
	return errors.Join(errs...)
}

// Retain makes Apply keep every undesired route of ours for which keep
// returns true, as it is (counted as Kept); nil keeps none. Desired routes
// are programmed as usual, so a retained route is only ever replaced, never
// deleted. It holds deletions back while the desired set is known to be
// partial (felix: learned routes after a restart).
func (t *RouteTable) Retain(keep func(*netlinkx.Route) bool) { t.retain = keep }

// Result counts what one Apply did.
type Result struct {
	Replaced  int // added or changed
	Deleted   int
	Unchanged int // desired and already right
	Conflicts int // desired prefixes held by a route we do not own
	Pending   int // desired but an interface is missing or down
	Kept      int // ours, undesired, kept for the grace period
}

// Plan is the difference between desired and kernel state.
type Plan struct {
	Replace   []netlinkx.Route
	Delete    []netlinkx.Route
	Unchanged int
	Conflicts map[netip.Prefix]int // prefix → protocol of the route holding it
	Kept      int
}

// Diff computes the plan, purely. desired is keyed by prefix; owned holds our
// kernel routes; foreign the protocol of a non-owned route holding a desired
// prefix at our priority; keep says whether an undesired route of ours is in
// its grace period.
func Diff(desired map[netip.Prefix]netlinkx.Route, owned []netlinkx.Route, foreign map[netip.Prefix]int, keep func(*netlinkx.Route) bool) Plan {
	return diff(desired, owned, foreign, keep, make(map[netip.Prefix]bool, len(owned)))
}

// diff is Diff with the caller's (empty) scratch map for matched prefixes.
func diff(desired map[netip.Prefix]netlinkx.Route, owned []netlinkx.Route, foreign map[netip.Prefix]int, keep func(*netlinkx.Route) bool, matched map[netip.Prefix]bool) Plan {
	p := Plan{Conflicts: map[netip.Prefix]int{}}
	for i := range owned {
		have := &owned[i]
		want, ok := desired[have.Dst]
		switch {
		case ok && !matched[have.Dst] && sameRoute(have, &want):
			matched[have.Dst] = true
			p.Unchanged++
		case ok && have.Priority == want.Priority:
			// Replaced below; the replace overwrites this key.
		case !ok && keep(have):
			p.Kept++
		default:
			p.Delete = append(p.Delete, *have)
		}
	}
	for dst, want := range desired {
		if matched[dst] {
			continue
		}
		if proto, ok := foreign[dst]; ok {
			p.Conflicts[dst] = proto
			continue
		}
		p.Replace = append(p.Replace, want)
	}
	return p
}

// Apply brings the kernel table to the desired state.
func (t *RouteTable) Apply() (Result, error) {
	var res Result
	links, err := t.k.LinkList()
	if err != nil {
		return res, fmt.Errorf("apply routes: %w", err)
	}
	byName, present := t.scratch.byName, t.scratch.present
	clear(byName)
	clear(present)
	now := t.now()
	for _, l := range links {
		byName[l.Name] = l
		if strings.HasPrefix(l.Name, t.ifacePrefix) {
			present[l.Index] = true
			if _, ok := t.firstSeen[l.Index]; !ok {
				t.firstSeen[l.Index] = now
			}
		}
	}
	for idx := range t.firstSeen {
		if !present[idx] {
			delete(t.firstSeen, idx)
		}
	}

	desired := t.scratch.desired
	clear(desired)
	for i := range t.desired {
		r, ok := resolve(&t.desired[i], byName, t.table, t.proto, 0)
		if !ok {
			res.Pending++
			continue
		}
		desired[r.Dst] = r
	}

	owned, foreign := t.scratch.owned[:0], t.scratch.foreign
	clear(foreign)
	defer func() { t.scratch.owned = owned[:0] }()
	err = t.k.RouteEach(netlinkx.RouteFilter{Table: t.table}, func(r *netlinkx.Route) {
		if r.Protocol == t.proto {
			x := *r
			if len(r.MultiPath) > 0 {
				x.MultiPath = append([]netlinkx.NextHop(nil), r.MultiPath...)
			}
			owned = append(owned, x)
			return
		}
		if _, want := desired[r.Dst]; want && r.Priority == 0 {
			foreign[r.Dst] = r.Protocol
		}
	}, func() {
		owned = owned[:0]
		clear(foreign)
	})
	if err != nil {
		return res, fmt.Errorf("apply routes: %w", err)
	}

	clear(t.scratch.matched)
	plan := diff(desired, owned, foreign, func(r *netlinkx.Route) bool {
		if t.retain != nil && t.retain(r) {
			return true
		}
		seen, ok := t.firstSeen[r.Path.LinkIndex]
		return ok && r.Path.LinkIndex != 0 && now.Sub(seen) < t.grace
	}, t.scratch.matched)
	res.Unchanged, res.Kept, res.Conflicts = plan.Unchanged, plan.Kept, len(plan.Conflicts)
	t.logConflicts(plan.Conflicts)

	var errs []error
	for i := range plan.Delete {
		r := &plan.Delete[i]
		if err := t.k.RouteDel(r); err != nil && !errors.Is(err, netlinkx.ErrNotFound) {
			errs = append(errs, err)
			continue
		}
		res.Deleted++
	}
	for i := range plan.Replace {
		if err := t.k.RouteReplace(&plan.Replace[i]); err != nil {
			errs = append(errs, err)
			// The kernel cannot reach the new next hop (e.g. a gateway
			// off every connected subnet): our old route to that prefix
			// is no longer what is wanted (say, through tunl0 after the
			// pool left IPIP), so it must not stay in use.
			if old, ok := ownedAt(owned, plan.Replace[i].Dst); ok && errors.Is(err, unix.ENETUNREACH) {
				if derr := t.k.RouteDel(old); derr != nil && !errors.Is(derr, netlinkx.ErrNotFound) {
					errs = append(errs, derr)
				} else {
					res.Deleted++
				}
			}
			continue
		}
		res.Replaced++
	}
	if res.Replaced+res.Deleted > 0 || len(errs) > 0 {
		t.log.Debug("routes applied", zap.Int("replaced", res.Replaced), zap.Int("deleted", res.Deleted),
			zap.Int("unchanged", res.Unchanged), zap.Int("pending", res.Pending), zap.Int("errors", len(errs)))
	}
	return res, errors.Join(errs...)
}

// ownedAt finds our route to dst (rare: only after a failed replace).
func ownedAt(owned []netlinkx.Route, dst netip.Prefix) (*netlinkx.Route, bool) {
	for i := range owned {
		if owned[i].Dst == dst {
			return &owned[i], true
		}
	}
	return nil, false
}

func (t *RouteTable) logConflicts(now map[netip.Prefix]int) {
	for dst, proto := range now {
		if old, ok := t.conflicts[dst]; ok && old == proto {
			continue
		}
		t.conflicts[dst] = proto
		t.log.Warn("route conflict: prefix held by a route gingham does not own; leaving it alone",
			zap.Stringer("prefix", dst), zap.Int("protocol", proto), zap.Int("ourProtocol", t.proto))
	}
	for dst := range t.conflicts {
		if _, ok := now[dst]; !ok {
			delete(t.conflicts, dst)
			t.log.Info("route conflict resolved", zap.Stringer("prefix", dst))
		}
	}
}
