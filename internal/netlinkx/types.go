// Package netlinkx is gingham's only importer of vishvananda/netlink. It
// exposes links, addresses, neighbours and routes as our own types (netip
// addresses, no netlink structs) through one reused netlink socket per
// namespace.
//
// Invariants:
//   - Every kernel call goes through a Handle: one socket per namespace,
//     never the package-level netlink functions (a new socket per call is
//     three times slower).
//   - A dump interrupted by a concurrent change (NLM_F_DUMP_INTR,
//     netlink.ErrDumpInterrupted) is retried from scratch a bounded number of
//     times; if it keeps failing the caller gets ErrInconsistentDump and no
//     results, so nobody ever acts on a partial dump.
//   - Route dumps always filter by table (RouteFilter.Table, main by
//     default); without RT_FILTER_TABLE netlink silently skips other tables.
//   - Errors wrap the kernel's errno: decide with errors.Is(err, unix.EEXIST),
//     errors.Is(err, ErrNotFound), ...
package netlinkx

import (
	"errors"
	"net"
	"net/netip"
)

// ErrInconsistentDump means a dump was interrupted by concurrent changes on
// every attempt; the caller must not act on what it has seen.
var ErrInconsistentDump = errors.New("netlink dump interrupted on every attempt")

// ErrNotFound means the link, route or neighbour does not exist.
var ErrNotFound = errors.New("not found")

// Well-known route tables and protocols.
const (
	TableMain = 254

	ProtoKernel = 2
	ProtoBoot   = 3
	ProtoStatic = 4
	ProtoBird   = 12
)

// RouteType is the kernel route type (RTN_*).
type RouteType uint8

// Route types gingham programs.
const (
	RouteUnicast     RouteType = 1
	RouteLocal       RouteType = 2
	RouteBroadcast   RouteType = 3
	RouteBlackhole   RouteType = 6
	RouteUnreachable RouteType = 7
	RouteProhibit    RouteType = 8
)

// Scope is the route scope (RT_SCOPE_*).
type Scope uint8

// Route scopes.
const (
	ScopeUniverse Scope = 0
	ScopeLink     Scope = 253
	ScopeHost     Scope = 254
)

// NextHop is one path of a route.
type NextHop struct {
	LinkIndex int
	Gw        netip.Addr // invalid for a device route
	OnLink    bool       // RTNH_F_ONLINK: the gateway need not be on a connected subnet
}

// Route is an IPv4 route. A route with one path has it in Path; a multipath
// (ECMP) route has MultiPath and a zero Path.
type Route struct {
	Dst       netip.Prefix
	Table     int
	Protocol  int
	Priority  int
	Type      RouteType
	Scope     Scope
	Path      NextHop
	MultiPath []NextHop
	MTU       int
}

// RouteFilter selects routes in a dump. Zero fields match anything, except
// Table: zero means the main table.
type RouteFilter struct {
	Table     int
	Protocol  int
	LinkIndex int
}

// Link is a network interface.
type Link struct {
	Index int
	Name  string
	Kind  string // "veth", "ipip", "device", ...
	MAC   net.HardwareAddr
	MTU   int
	Up    bool // administratively up
	// OperUp is the operational state (carrier).
	OperUp bool
	// Alias is the interface's free-text alias (IFLA_IFALIAS, "ip link set
	// alias"); the CNI plugin records a veth's owner there.
	Alias string
	// Peer is IFLA_LINK: a veth's peer (its index in the peer's namespace),
	// the parent of a VLAN or macvlan; 0 when the link has none.
	Peer int
}

// Neigh is an IPv4 neighbour (ARP) entry.
type Neigh struct {
	LinkIndex int
	IP        netip.Addr
	MAC       net.HardwareAddr
	Permanent bool
}

// EventKind says what changed.
type EventKind uint8

// Event kinds.
const (
	EventLink EventKind = iota + 1
	EventAddr
	EventRoute
	// EventError means a subscription failed; events may have been lost and
	// a full resync is needed.
	EventError
)

// Event is one kernel notification.
type Event struct {
	Kind    EventKind
	Deleted bool
	Link    Link  // EventLink
	Route   Route // EventRoute
	Addr    netip.Prefix
	Err     error // EventError
}
