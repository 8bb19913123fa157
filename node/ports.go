package node

import (
	"context"
	"net/netip"
	"time"

	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/bgp"
	"github.com/gingham-net/gingham/felix"
	"github.com/gingham-net/gingham/felix/nat"
)

// The interfaces below are what the loop and the applier use of the world.
// Run (the composition root) builds the real ones; the loop's tests fake
// them. Each is as small as its one consumer needs.

// Speaker is the BGP speaker as the applier drives it; bgp.Router (the
// GoBGP speaker) satisfies it.
type Speaker interface {
	Reconcile(ctx context.Context, d bgp.Desired) error
	Sessions(ctx context.Context) ([]bgp.SessionStatus, error)
}

var _ Speaker = bgp.Router(nil)

// Dataplane is felix as the applier drives it (*felix.Dataplane).
type Dataplane interface {
	SetLocalEndpoints(ctx context.Context, eps []felix.Endpoint) error
	SetLocalBlocks(ctx context.Context, blocks []netip.Prefix) error
	SetNATPools(ctx context.Context, pools []nat.Pool) error
	// SetRemoteRoutes with complete false programs routes at once but
	// keeps learned routes missing from them (see felix).
	SetRemoteRoutes(ctx context.Context, routes []felix.Route, complete bool) error
}

var _ Dataplane = (*felix.Dataplane)(nil)

// Tunnel is tunl0, its address and its ingress filter.
type Tunnel interface {
	// Sync brings the tunnel in line with p and reports whether routes
	// may go through it.
	Sync(ctx context.Context, p TunnelPlan) TunnelState
}

// TunnelState is what the last Sync achieved.
type TunnelState struct {
	Up bool
	// Reason says why IPIP cannot be served on this node (empty when it
	// can, even while the tunnel is not up yet).
	Reason string
}

// MTUFile is the pod MTU the CNI plugin reads.
type MTUFile interface {
	// Write records the pod MTU for an uplink with (ipip) or without
	// IPIP encapsulation.
	Write(ipip bool) error
}

// StatusPublisher hands this node's status to its readers (the local
// status socket, the API writer); it must not block.
type StatusPublisher interface {
	Publish(st v1.GinghamNodeStatusStatus)
}

// SnapshotSource reads the API caches (*watcher).
type SnapshotSource interface {
	Snapshot(ctx context.Context) (Snapshot, error)
}

// SecretSource reads the Secrets holding BGP passwords (*passwordCache).
type SecretSource interface {
	// Secret returns the data of the named Secret. On a failed read it
	// returns the data last read (nil if none) with the error.
	Secret(ctx context.Context, name string) (map[string][]byte, error)
}

// EndpointSource reads this node's workload endpoints from the kernel.
type EndpointSource interface {
	Endpoints() ([]felix.Endpoint, error)
}

// Clock tells the time. Timers come from package time: tests run the loop
// in a testing/synctest bubble, where both are fake.
type Clock interface {
	Now() time.Time
}

// systemClock is the real clock.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// kernelEndpoints discovers endpoints in this node's namespace.
type kernelEndpoints struct{ prefix string }

func (k kernelEndpoints) Endpoints() ([]felix.Endpoint, error) {
	return felix.DiscoverEndpoints(nil, k.prefix)
}
