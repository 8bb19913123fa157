package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/gingham-net/gingham/api/model"
)

// Router is the BGP speaker as the agent uses it. The only implementation
// is bgp/gobgp.Speaker; tests of the agent use a fake.
type Router interface {
	// Start starts the speaker. It is called once, before anything else.
	Start(ctx context.Context, g GlobalConfig) error
	// Reconcile makes the running peers, import policy and originated paths
	// equal to d, touching only what differs. Calling it twice with the same
	// d is a no-op. On error, the speaker's record of what is running stays
	// accurate, so the next Reconcile retries only what failed.
	Reconcile(ctx context.Context, d Desired) error
	// Sessions lists the state of every configured peer.
	Sessions(ctx context.Context) ([]SessionStatus, error)
	// Stop ends the speaker. With withdraw false (a planned restart) no
	// NOTIFICATION is sent to graceful-restart peers, so they keep our
	// routes as stale for the restart time; with withdraw true every peer
	// gets a Cease and withdraws our routes at once.
	Stop(ctx context.Context, withdraw bool) error
}

// GlobalConfig is the speaker's identity. Changing it needs a restart.
type GlobalConfig struct {
	RouterID netip.Addr // IPv4; usually the node's address
	ASN      uint32
	// ListenPort is the BGP port; 0 means 179, -1 means do not listen
	// (every session must then be active).
	ListenPort int32
	// ListenAddrs restricts listening to these addresses (default: all).
	ListenAddrs []netip.Addr
	// Restarting says this start follows a restart with forwarding state
	// preserved (our routes are still in the kernel). Only then do peers
	// added within DeferralTime of Start get the GR restarting flag, and
	// our UPDATEs are held until their End-of-RIB or the deferral expires.
	Restarting bool
	// DeferralTime bounds how long a restarting speaker waits for peers'
	// End-of-RIB (default 30s).
	DeferralTime time.Duration
}

// Desired is everything Reconcile converges to.
type Desired struct {
	Peers []PeerConfig
	Paths []Path
	// PoolCIDRs are the cluster's IP pools: routes inside them from
	// external peers without AllowPoolRoutes are rejected on import.
	PoolCIDRs []netip.Prefix
}

// Path is a route we originate.
type Path struct {
	Prefix      netip.Prefix
	NextHop     netip.Addr
	Communities []model.Community
}

// PeerType says why a session exists; it is shown in the node status.
type PeerType string

// Peer types, worded as Calico's node status words them.
const (
	PeerTypeMesh           PeerType = "node-to-node mesh"
	PeerTypeGlobal         PeerType = "global"
	PeerTypeNodeSpecific   PeerType = "node specific"
	PeerTypeRouteReflector PeerType = "route reflector"
)

// PeerConfig is one BGP session. It is comparable: Reconcile replaces a
// running session only when its PeerConfig changed.
type PeerConfig struct {
	Address  netip.Addr
	Port     uint16 // remote port; 0 means 179
	ASN      uint32 // remote AS; equal to LocalASN means iBGP
	LocalASN uint32
	Type     PeerType
	// Node is the remote gingham node's name; empty for external peers.
	Node string
	// Source is the BGPPeer name (empty for the mesh).
	Source string
	// Passive: wait for the remote side to connect.
	Passive bool
	// PasswordRef names the Secret with the TCP-MD5 password; the caller
	// resolves it into Password before Reconcile. Password is never logged.
	PasswordRef model.SecretRef
	Password    string
	// RRClient: we reflect routes to this peer, with ClusterID.
	RRClient  bool
	ClusterID netip.Addr
	// TTLSecurity enables GTSM for peers this many hops away (0: off).
	// Multihop sets the TTL of eBGP sessions to non-adjacent peers (0: 1).
	TTLSecurity uint8
	Multihop    uint8
	// Timers. Zero values take the model defaults (keepalive 20s, hold
	// 60s); ConnectRetry defaults to 5s (Calico's "connect retry time").
	Keepalive    time.Duration
	Hold         time.Duration
	ConnectRetry time.Duration
	// RestartTime is the graceful-restart time we advertise (0: GR off).
	RestartTime time.Duration
	// MaxPrefixes resets the session when the peer sends more (0: no limit).
	MaxPrefixes uint32
	// SourceAddr binds the session to a local address (invalid: kernel's choice).
	SourceAddr      netip.Addr
	AllowPoolRoutes bool
}

// External reports whether the peer is not a gingham node.
func (p PeerConfig) External() bool { return p.Node == "" }

// RemotePort returns the port to dial.
func (p PeerConfig) RemotePort() uint16 {
	if p.Port == 0 {
		return model.DefaultBGPPort
	}
	return p.Port
}

// String describes the peer without its password.
func (p PeerConfig) String() string {
	pw := ""
	if p.Password != "" {
		pw = " password=<redacted>"
	}
	return fmt.Sprintf("%s:%d AS%d (%s%s)%s", p.Address, p.RemotePort(), p.ASN, p.Type, nodeSuffix(p.Node), pw)
}

func nodeSuffix(n string) string {
	if n == "" {
		return ""
	}
	return " " + n
}

// Learned is the speaker's learned state at one moment.
type Learned struct {
	// Routes are the best routes, sorted by prefix.
	Routes []LearnedRoute
	// EndOfRIB are the peers (sorted) whose End-of-RIB for unicast of
	// their address family has been received in their current session:
	// every route they sent before it is in Routes. A peer leaves the
	// list when its session changes state.
	EndOfRIB []netip.Addr
}

// LearnedRoute is a best route learned from peers: one prefix with every
// next hop of its equal-cost best paths (ECMP).
type LearnedRoute struct {
	Prefix   netip.Prefix
	NextHops []netip.Addr // sorted, distinct
	// FromPeer is the lowest address among the peers of the tied paths.
	FromPeer netip.Addr
}

// SessionState is a BGP FSM state.
type SessionState string

// Session states.
const (
	StateIdle        SessionState = "Idle"
	StateConnect     SessionState = "Connect"
	StateActive      SessionState = "Active"
	StateOpenSent    SessionState = "OpenSent"
	StateOpenConfirm SessionState = "OpenConfirm"
	StateEstablished SessionState = "Established"
)

// SessionStatus is one session as the node status reports it.
type SessionStatus struct {
	Peer  netip.Addr
	Port  uint16
	ASN   uint32
	Type  PeerType
	Node  string
	State SessionState
	// Since is when the session last entered or left Established.
	Since time.Time
	// Info is the last disconnect reason, if any.
	Info                                  string
	Received, Accepted, Advertised, Flaps uint64
}
