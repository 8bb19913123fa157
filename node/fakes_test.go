package node

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/bgp"
	"github.com/gingham-net/gingham/felix"
	"github.com/gingham-net/gingham/felix/nat"
)

// The fakes behave like the parts they stand for, as far as the loop can
// tell, and fail the test on misuse. Each is safe for concurrent use: the
// loop's goroutine drives it while the test inspects it.

var (
	_ SnapshotSource  = (*fakeSource)(nil)
	_ SecretSource    = (*fakeSecrets)(nil)
	_ EndpointSource  = (*fakeEndpoints)(nil)
	_ Speaker         = (*fakeSpeaker)(nil)
	_ Dataplane       = (*fakeDataplane)(nil)
	_ Tunnel          = (*fakeTunnel)(nil)
	_ MTUFile         = (*fakeMTU)(nil)
	_ StatusPublisher = (*fakePublisher)(nil)
)

// fakeSource serves a snapshot, or an error (the caches unreadable).
type fakeSource struct {
	mu   sync.Mutex
	snap Snapshot
	err  error
}

func (f *fakeSource) Snapshot(context.Context) (Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snap, f.err
}

func (f *fakeSource) set(fn func(*Snapshot)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.snap)
}

func (f *fakeSource) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// fakeSecrets is the password cache: data by Secret name; down makes
// every read fail while returning the data last read, as the cache does.
type fakeSecrets struct {
	mu   sync.Mutex
	data map[string]map[string][]byte
	down bool
}

func (f *fakeSecrets) Secret(_ context.Context, name string) (map[string][]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.data[name]
	switch {
	case f.down:
		return d, fmt.Errorf("read secret %s: %w", name, errUnreachable)
	case !ok:
		return nil, fmt.Errorf("read secret %s: not found", name)
	}
	return d, nil
}

func (f *fakeSecrets) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

type fakeEndpoints struct{ eps []felix.Endpoint }

func (f fakeEndpoints) Endpoints() ([]felix.Endpoint, error) { return f.eps, nil }

// fakeSpeaker keeps what Reconcile was given and serves sessions the test
// sets. Reconcile with two peers at one address fails the test (GoBGP keys
// neighbors by address).
type fakeSpeaker struct {
	t        *testing.T
	mu       sync.Mutex
	desired  bgp.Desired
	calls    int
	sessions map[netip.Addr]bgp.SessionStatus
	err      error
}

func (f *fakeSpeaker) Reconcile(_ context.Context, d bgp.Desired) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := map[netip.Addr]bool{}
	for _, p := range d.Peers {
		if seen[p.Address] {
			f.t.Errorf("fake speaker: two peers at %s", p.Address)
		}
		seen[p.Address] = true
	}
	f.desired, f.calls = d, f.calls+1
	return f.err
}

// Sessions lists a session for every configured peer, Idle unless set.
func (f *fakeSpeaker) Sessions(context.Context) ([]bgp.SessionStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []bgp.SessionStatus
	for _, p := range f.desired.Peers {
		s, ok := f.sessions[p.Address]
		if !ok {
			s = bgp.SessionStatus{Peer: p.Address, State: bgp.StateIdle}
		}
		s.Type, s.Node, s.ASN = p.Type, p.Node, p.ASN
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b bgp.SessionStatus) int { return a.Peer.Compare(b.Peer) })
	return out, nil
}

// setState moves the session with peer to state at now.
func (f *fakeSpeaker) setState(peer netip.Addr, state bgp.SessionState, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.sessions[peer]
	if s.State == bgp.StateEstablished && state != bgp.StateEstablished {
		s.Flaps++
	}
	s.Peer, s.State, s.Since = peer, state, now
	f.sessions[peer] = s
}

func (f *fakeSpeaker) peers() []bgp.PeerConfig {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.desired.Peers)
}

// fakeDataplane is felix over a model kernel: it writes nothing until
// every input has been set once, then makes the kernel's routes the
// desired ones (keeping learned routes missing from an incomplete learned
// set), recording every learned route it deletes. onApply is called after
// each write (felix's WithOnApply).
type fakeDataplane struct {
	mu       sync.Mutex
	eps      []felix.Endpoint
	blocks   []netip.Prefix
	pools    []nat.Pool
	remote   []felix.Route
	complete bool
	have     int
	onApply  func()

	// kernel: remote routes by prefix (adopted ones included), local
	// blackholes and endpoint routes.
	kernel    map[netip.Prefix]felix.Route
	holes     []netip.Prefix
	podRoutes []netip.Addr
	deleted   []netip.Prefix
	applies   int
}

func newFakeDataplane(adopted ...felix.Route) *fakeDataplane {
	f := &fakeDataplane{kernel: map[netip.Prefix]felix.Route{}}
	for _, r := range adopted {
		f.kernel[r.Prefix] = r
	}
	return f
}

const (
	haveEps = 1 << iota
	haveBlocks
	havePools
	haveRemote
)

func (f *fakeDataplane) set(bit int, fn func()) error {
	f.mu.Lock()
	fn()
	f.have |= bit
	apply := f.have == haveEps|haveBlocks|havePools|haveRemote
	if apply {
		f.applyLocked()
	}
	cb := f.onApply
	f.mu.Unlock()
	if apply && cb != nil {
		cb()
	}
	return nil
}

func (f *fakeDataplane) applyLocked() {
	want := map[netip.Prefix]felix.Route{}
	for _, r := range f.remote {
		want[r.Prefix] = r
	}
	for _, p := range prefixes(f.kernel) {
		if _, ok := want[p]; !ok {
			if !f.complete {
				want[p] = f.kernel[p]
				continue
			}
			f.deleted = append(f.deleted, p)
		}
	}
	f.kernel = want
	f.holes = slices.Clone(f.blocks)
	f.podRoutes = nil
	for _, ep := range f.eps {
		f.podRoutes = append(f.podRoutes, ep.IP)
	}
	f.applies++
}

func (f *fakeDataplane) SetLocalEndpoints(_ context.Context, eps []felix.Endpoint) error {
	return f.set(haveEps, func() { f.eps = slices.Clone(eps) })
}

func (f *fakeDataplane) SetLocalBlocks(_ context.Context, blocks []netip.Prefix) error {
	return f.set(haveBlocks, func() { f.blocks = slices.Clone(blocks) })
}

func (f *fakeDataplane) SetNATPools(_ context.Context, pools []nat.Pool) error {
	return f.set(havePools, func() { f.pools = slices.Clone(pools) })
}

func (f *fakeDataplane) SetRemoteRoutes(_ context.Context, routes []felix.Route, complete bool) error {
	return f.set(haveRemote, func() { f.remote, f.complete = slices.Clone(routes), complete })
}

// state returns the kernel's learned routes, blackholes and the learned
// routes deleted so far.
func (f *fakeDataplane) state() (remote []netip.Prefix, holes, deleted []netip.Prefix, applies int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return prefixes(f.kernel), slices.Clone(f.holes), slices.Clone(f.deleted), f.applies
}

// prefixes returns the keys of m, sorted.
func prefixes[V any](m map[netip.Prefix]V) []netip.Prefix {
	return slices.SortedFunc(maps.Keys(m), func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
}

type fakeTunnel struct {
	mu    sync.Mutex
	state TunnelState
	syncs int
}

func (f *fakeTunnel) Sync(context.Context, TunnelPlan) TunnelState {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.syncs++
	return f.state
}

func (f *fakeTunnel) passes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.syncs
}

type fakeMTU struct {
	mu     sync.Mutex
	writes []bool
}

func (f *fakeMTU) Write(ipip bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes = append(f.writes, ipip)
	return nil
}

// fakePublisher records every status published, with the (fake) time.
type fakePublisher struct {
	mu  sync.Mutex
	all []v1.GinghamNodeStatusStatus
}

func (f *fakePublisher) Publish(st v1.GinghamNodeStatusStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.all = append(f.all, st)
}

func (f *fakePublisher) states() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, s := range f.all {
		out = append(out, s.AgentState)
	}
	return out
}

func (f *fakePublisher) last() v1.GinghamNodeStatusStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.all) == 0 {
		return v1.GinghamNodeStatusStatus{}
	}
	return f.all[len(f.all)-1]
}

var errAPIDown = errors.New("the API server is unreachable")
