package gobgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/server"
	"go.uber.org/zap"

	"github.com/gingham-net/gingham/bgp"
	"github.com/gingham-net/gingham/internal/logging"
)

// GoBGP names of our policy objects.
const (
	policyImport     = "gingham-import"
	setPools         = "gingham-pools"
	setPoolsDenied   = "gingham-external-no-pool-routes"
	stmtDenyPoolFrom = "gingham-reject-pool-routes-from-external"
)

type runningPath struct {
	path bgp.Path
	uuid [16]byte
}

// importPolicy is the desired global import policy: reject routes inside
// pools from the listed (external) peers.
type importPolicy struct {
	pools  []netip.Prefix // sorted
	denied []netip.Addr   // sorted
}

func (p importPolicy) equal(o importPolicy) bool {
	return slices.Equal(p.pools, o.pools) && slices.Equal(p.denied, o.denied)
}

func desiredPolicy(d bgp.Desired) importPolicy {
	var p importPolicy
	for _, c := range d.PoolCIDRs {
		p.pools = append(p.pools, c.Masked())
	}
	for _, pc := range d.Peers {
		if pc.External() && !pc.AllowPoolRoutes {
			p.denied = append(p.denied, pc.Address)
		}
	}
	slices.SortFunc(p.pools, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	p.pools = slices.Compact(p.pools)
	slices.SortFunc(p.denied, func(a, b netip.Addr) int { return a.Compare(b) })
	p.denied = slices.Compact(p.denied)
	return p
}

// installPolicy replaces our defined sets and import policy. An empty set is
// never referenced (GoBGP matches everything against an empty set), so the
// reject statement exists only when both sets are non-empty.
func installPolicy(ctx context.Context, srv *server.BgpServer, p importPolicy, first bool) error {
	pol := &api.Policy{Name: policyImport}
	var sets []*api.DefinedSet
	if len(p.pools) > 0 && len(p.denied) > 0 {
		ps := &api.DefinedSet{DefinedType: api.DefinedType_DEFINED_TYPE_PREFIX, Name: setPools}
		for _, c := range p.pools {
			ps.Prefixes = append(ps.Prefixes, &api.Prefix{IpPrefix: c.String(), MaskLengthMin: uint32(c.Bits()), MaskLengthMax: uint32(c.Addr().BitLen())})
		}
		ns := &api.DefinedSet{DefinedType: api.DefinedType_DEFINED_TYPE_NEIGHBOR, Name: setPoolsDenied}
		for _, a := range p.denied {
			ns.List = append(ns.List, netip.PrefixFrom(a, a.BitLen()).String())
		}
		sets = append(sets, ps, ns)
		pol.Statements = []*api.Statement{{
			Name: stmtDenyPoolFrom,
			Conditions: &api.Conditions{
				PrefixSet:   &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: setPools},
				NeighborSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: setPoolsDenied},
			},
			Actions: &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_REJECT},
		}}
	}
	if err := srv.SetPolicies(ctx, &api.SetPoliciesRequest{DefinedSets: sets, Policies: []*api.Policy{pol}}); err != nil {
		return fmt.Errorf("set import policy: %w", err)
	}
	if first {
		if err := srv.AddPolicyAssignment(ctx, &api.AddPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
			Name: "global", Direction: api.PolicyDirection_POLICY_DIRECTION_IMPORT,
			Policies: []*api.Policy{{Name: policyImport}}, DefaultAction: api.RouteAction_ROUTE_ACTION_ACCEPT,
		}}); err != nil {
			return fmt.Errorf("assign import policy: %w", err)
		}
	}
	return nil
}

// Reconcile applies the difference between d and what runs: import policy
// first, then originated paths, then sessions (removed ones before new
// ones). It returns every error; what succeeded is recorded.
func (s *Speaker) Reconcile(ctx context.Context, d bgp.Desired) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return ErrNotStarted
	}
	var errs []error
	if err := s.reconcilePolicy(ctx, d); err != nil {
		errs = append(errs, err)
	}
	if err := s.reconcilePaths(d.Paths); err != nil {
		errs = append(errs, err)
	}
	if err := s.reconcilePeers(ctx, d.Peers); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (s *Speaker) reconcilePolicy(ctx context.Context, d bgp.Desired) error {
	want := desiredPolicy(d)
	if want.equal(s.policy) {
		return nil
	}
	if err := installPolicy(ctx, s.srv, want, false); err != nil {
		return err
	}
	s.policy = want
	// Re-evaluate what running sessions already sent (local, no reset).
	var errs []error
	for addr := range s.peers {
		if err := s.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: addr.String(), Soft: true, Direction: api.ResetPeerRequest_DIRECTION_IN}); err != nil {
			errs = append(errs, fmt.Errorf("soft reset in %s: %w", addr, err))
		}
	}
	s.log.Info("import policy updated", zap.Int("pools", len(want.pools)), zap.Int("externalPeers", len(want.denied)))
	return errors.Join(errs...)
}

func (s *Speaker) reconcilePaths(desired []bgp.Path) error {
	want := make(map[netip.Prefix]bgp.Path, len(desired))
	for _, p := range desired {
		want[p.Prefix.Masked()] = p
	}
	var errs []error
	var stale [][16]byte
	var staleKeys []netip.Prefix
	for prefix, rp := range s.paths {
		if _, ok := want[prefix]; !ok {
			stale = append(stale, rp.uuid)
			staleKeys = append(staleKeys, prefix)
		}
	}
	if len(stale) > 0 {
		req := apiutil.DeletePathRequest{}
		for _, u := range stale {
			req.UUIDs = append(req.UUIDs, u)
		}
		if err := s.srv.DeletePath(req); err != nil {
			errs = append(errs, fmt.Errorf("withdraw %d paths: %w", len(stale), err))
		} else {
			for _, k := range staleKeys {
				delete(s.paths, k)
			}
		}
	}
	var add []*apiutil.Path
	var addKeys []bgp.Path
	for prefix, p := range want {
		if rp, ok := s.paths[prefix]; ok && samePath(rp.path, p) {
			continue
		}
		ap, err := pathToAPI(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		add = append(add, ap)
		addKeys = append(addKeys, p)
	}
	if len(add) > 0 {
		resps, err := s.srv.AddPath(apiutil.AddPathRequest{Paths: add})
		for i, r := range resps {
			if r.Error == nil {
				s.paths[addKeys[i].Prefix.Masked()] = runningPath{path: addKeys[i], uuid: r.UUID}
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("advertise %d paths: %w", len(add), err))
		}
		s.log.Debug("paths advertised", zap.Int("count", len(add)))
	}
	return errors.Join(errs...)
}

func samePath(a, b bgp.Path) bool {
	return a.Prefix == b.Prefix && a.NextHop == b.NextHop && slices.Equal(a.Communities, b.Communities)
}

func (s *Speaker) reconcilePeers(ctx context.Context, desired []bgp.PeerConfig) error {
	want := make(map[netip.Addr]bgp.PeerConfig, len(desired))
	for _, p := range desired {
		want[p.Address] = p
	}
	var errs []error
	for addr, running := range s.peers {
		if w, ok := want[addr]; ok && w == running {
			continue
		}
		// Gone or changed: a changed session must re-OPEN anyway (GoBGP's
		// UpdatePeer deletes and re-adds for nearly every field).
		if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr.String()}); err != nil {
			errs = append(errs, fmt.Errorf("delete peer %s: %w", addr, err))
			continue
		}
		delete(s.peers, addr)
		s.log.Info("peer removed", zap.Stringer(logging.KeyPeer, addr))
	}
	restarting := s.global.Restarting && time.Since(s.started) < s.global.DeferralTime
	addrs := make([]netip.Addr, 0, len(want))
	for a := range want {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, func(a, b netip.Addr) int { return a.Compare(b) })
	for _, addr := range addrs {
		p := want[addr]
		if _, ok := s.peers[addr]; ok {
			continue
		}
		if p.PasswordRef.IsSet() && p.Password == "" {
			errs = append(errs, fmt.Errorf("add peer %s: password secret %s/%s not resolved", addr, p.PasswordRef.Name, p.PasswordRef.Key))
			continue
		}
		if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: peerToAPI(p, s.global.ASN, restarting, s.global.DeferralTime)}); err != nil {
			errs = append(errs, fmt.Errorf("add peer %s: %w", p, err))
			continue
		}
		s.peers[addr] = p
		s.log.Info("peer added", zap.Stringer(logging.KeyPeer, p), zap.Bool("passive", p.Passive), zap.Bool("restarting", restarting))
	}
	return errors.Join(errs...)
}

// Sessions lists every configured session, sorted by address.
func (s *Speaker) Sessions(ctx context.Context) ([]bgp.SessionStatus, error) {
	s.mu.Lock()
	srv, peers := s.srv, s.peers
	s.mu.Unlock()
	if srv == nil {
		return nil, ErrNotStarted
	}
	var out []bgp.SessionStatus
	err := srv.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
		addr, err := netip.ParseAddr(p.GetConf().GetNeighborAddress())
		if err != nil {
			return
		}
		st := bgp.SessionStatus{Peer: addr, ASN: p.GetConf().GetPeerAsn(), State: stateFromAPI(p.GetState().GetSessionState())}
		s.mu.Lock()
		if pc, ok := peers[addr]; ok {
			st.Port, st.Type, st.Node = pc.RemotePort(), pc.Type, pc.Node
		}
		s.mu.Unlock()
		ts := p.GetTimers().GetState()
		if st.State == bgp.StateEstablished && ts.GetUptime() != nil {
			st.Since = ts.GetUptime().AsTime()
		} else if ts.GetDowntime() != nil {
			st.Since = ts.GetDowntime().AsTime()
		}
		if st.State == bgp.StateEstablished {
			// GoBGP keeps whole seconds: a session up since 12:00:05.9
			// would look a second old at 12:00:06.0, and the agent would
			// take the peer's table as complete before it arrived.
			st.Since = s.learned.since(addr, st.State, st.Since, time.Now())
		}
		st.Info = p.GetState().GetDisconnectMessage()
		st.Flaps = uint64(p.GetState().GetFlops())
		for _, a := range p.GetAfiSafis() {
			st.Received += a.GetState().GetReceived()
			st.Accepted += a.GetState().GetAccepted()
			st.Advertised += a.GetState().GetAdvertised()
		}
		out = append(out, st)
	})
	if err != nil {
		return nil, fmt.Errorf("list bgp sessions: %w", err)
	}
	slices.SortFunc(out, func(a, b bgp.SessionStatus) int { return a.Peer.Compare(b.Peer) })
	return out, nil
}
