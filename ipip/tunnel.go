package ipip

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"go.uber.org/zap"

	"github.com/gingham-net/gingham/api/model"
)

// ErrUnsupported means the kernel cannot create ipip links (no
// CONFIG_NET_IPIP, or the module cannot be loaded).
var ErrUnsupported = errors.New("kernel has no ipip support")

// ErrConflict means a link named tunl0 exists but is not an ipip link; it is
// left alone.
var ErrConflict = errors.New("tunl0 exists and is not an ipip link")

// Desired is the state tunl0 should be in.
type Desired struct {
	// Enabled: some pool uses IPIP. When false, tunl0 is not created and its
	// addresses are removed if it exists.
	Enabled bool
	// Addr is the node's tunnel address; invalid while none is allocated
	// (tunl0 then carries no address).
	Addr netip.Addr
	// MTU of tunl0 (host MTU − 20); 0 leaves the MTU alone.
	MTU int
}

// Desire computes the desired tunl0 from the pools, the node's tunnel
// address (model.Node.IPIPTunnelAddr) and the uplink MTU.
func Desire(pools []model.Pool, tunnelAddr netip.Addr, hostMTU int) Desired {
	d := Desired{Enabled: Enabled(pools)}
	if !d.Enabled {
		return d
	}
	if tunnelAddr.Is4() {
		d.Addr = tunnelAddr
	}
	if hostMTU > Overhead {
		d.MTU = TunnelMTU(hostMTU)
	}
	return d
}

// Observed is tunl0 as the kernel has it.
type Observed struct {
	Exists bool
	Kind   string
	Index  int
	MTU    int
	Up     bool
	Addrs  []netip.Prefix // IPv4 only
}

// ActionKind is one kind of kernel write.
type ActionKind string

// The writes Plan can ask for, in the order they are applied.
const (
	ActCreate  ActionKind = "create"
	ActSetMTU  ActionKind = "set-mtu"
	ActDelAddr ActionKind = "del-addr"
	ActAddAddr ActionKind = "add-addr"
	ActSetUp   ActionKind = "set-up"
)

// Action is one write to tunl0.
type Action struct {
	Kind ActionKind
	MTU  int          // ActSetMTU
	Addr netip.Prefix // ActAddAddr, ActDelAddr
}

func (a Action) String() string {
	switch a.Kind {
	case ActSetMTU:
		return fmt.Sprintf("%s %d", a.Kind, a.MTU)
	case ActAddAddr, ActDelAddr:
		return fmt.Sprintf("%s %s", a.Kind, a.Addr)
	}
	return string(a.Kind)
}

// Plan is the list of writes that bring o to d, purely. A tunl0 that is not
// an ipip link yields ErrConflict and no writes.
func Plan(d Desired, o Observed) ([]Action, error) {
	if o.Exists && o.Kind != "ipip" {
		return nil, fmt.Errorf("plan %s (kind %q): %w", Device, o.Kind, ErrConflict)
	}
	var out []Action
	if !d.Enabled {
		for _, a := range o.Addrs {
			out = append(out, Action{Kind: ActDelAddr, Addr: a})
		}
		return out, nil
	}
	if !o.Exists {
		out = append(out, Action{Kind: ActCreate})
		o = Observed{Exists: true, Kind: "ipip"}
	}
	if d.MTU > 0 && o.MTU != d.MTU {
		out = append(out, Action{Kind: ActSetMTU, MTU: d.MTU})
	}
	want := netip.Prefix{}
	if d.Addr.IsValid() {
		want = netip.PrefixFrom(d.Addr, 32)
	}
	for _, a := range o.Addrs {
		if a != want {
			out = append(out, Action{Kind: ActDelAddr, Addr: a})
		}
	}
	if want.IsValid() && !slices.Contains(o.Addrs, want) {
		out = append(out, Action{Kind: ActAddAddr, Addr: want})
	}
	if !o.Up {
		out = append(out, Action{Kind: ActSetUp})
	}
	return out, nil
}

// kernel is what the Manager needs of netlink, for tunl0 only.
type kernel interface {
	observe() (Observed, error)
	create() error // fails with ErrUnsupported on a kernel without ipip
	setMTU(index, mtu int) error
	addAddr(index int, p netip.Prefix) error
	delAddr(index int, p netip.Prefix) error
	setUp(index int) error
}

// Status is what an Apply left behind.
type Status struct {
	// Ready: tunl0 is up with the desired address and MTU, so routes
	// through it work and carry the tunnel address as source.
	Ready bool
	// Actions are the writes this Apply performed (empty when in sync).
	Actions []Action
}

// Manager keeps tunl0 in the desired state. It holds no state of its own
// besides its kernel connection: every Apply reads tunl0 afresh. Not safe
// for concurrent use; the agent's dataplane goroutine owns it.
type Manager struct {
	k   kernel
	log *zap.Logger
}

// Option configures a Manager.
type Option func(*Manager)

// WithLogger sets the logger (default silent).
func WithLogger(l *zap.Logger) Option { return func(m *Manager) { m.log = l } }

func newManager(k kernel, opts ...Option) *Manager {
	m := &Manager{k: k, log: zap.NewNop()}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Apply brings tunl0 to d. On error the returned Status lists the writes
// that did succeed. errors.Is(err, ErrUnsupported) means the kernel has no
// ipip: nothing was written, and pools asking for IPIP cannot be served.
func (m *Manager) Apply(d Desired) (Status, error) {
	var st Status
	o, err := m.k.observe()
	if err != nil {
		return st, err
	}
	plan, err := Plan(d, o)
	if err != nil {
		return st, err
	}
	for _, a := range plan {
		if err := m.do(a, &o); err != nil {
			return st, fmt.Errorf("apply %s %s: %w", Device, a, err)
		}
		st.Actions = append(st.Actions, a)
		m.log.Info("tunnel device changed", zap.String("device", Device), zap.Stringer("action", a))
	}
	st.Ready = d.Enabled && d.Addr.IsValid()
	return st, nil
}

func (m *Manager) do(a Action, o *Observed) error {
	switch a.Kind {
	case ActCreate:
		if err := m.k.create(); err != nil {
			return err
		}
		n, err := m.k.observe()
		if err != nil {
			return err
		}
		if !n.Exists || n.Kind != "ipip" {
			return fmt.Errorf("created %s but found kind %q: %w", Device, n.Kind, ErrConflict)
		}
		*o = n
		return nil
	case ActSetMTU:
		return m.k.setMTU(o.Index, a.MTU)
	case ActDelAddr:
		return m.k.delAddr(o.Index, a.Addr)
	case ActAddAddr:
		return m.k.addAddr(o.Index, a.Addr)
	case ActSetUp:
		return m.k.setUp(o.Index)
	}
	return fmt.Errorf("unknown action %q", a.Kind)
}
