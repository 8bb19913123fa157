package node

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/gingham-net/gingham/api/model"
	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/bgp"
	"github.com/gingham-net/gingham/felix"
	"github.com/gingham-net/gingham/felix/nat"
	"github.com/gingham-net/gingham/ipip"
)

// PlanConfig is what planning needs of the agent's configuration; it does
// not change while the agent runs.
type PlanConfig struct {
	NodeName string
	// NodeIP is this node's BGP address, used until its own Node carries
	// it.
	NodeIP netip.Prefix
	// ASN is the speaker's AS, fixed when it started; EnvASN is
	// GINGHAM_AS (0: unset).
	ASN, EnvASN     uint32
	InterfacePrefix string
	// ResyncInterval is how often the tunnel's filter is fully reasserted.
	ResyncInterval time.Duration
	// Started is when the speaker started: the learned routes are
	// complete at the latest learnedDeadline after it (see learnedComplete).
	Started time.Time
}

// Inputs is everything one plan is computed from, gathered by the loop at
// one moment. It holds model and bgp types, never API objects.
type Inputs struct {
	Now      time.Time
	Config   PlanConfig
	Snapshot Snapshot
	// Secrets are the Secrets the snapshot's peers and mesh name, by
	// Secret name, as last read.
	Secrets map[string]SecretRead
	// Learned is the speaker's latest learned set and End-of-RIBs.
	Learned bgp.Learned
	// Sessions are the speaker's sessions (or the error reading them).
	Sessions    []bgp.SessionStatus
	SessionsErr error
	// Endpoints are this node's workload endpoints as the kernel has them.
	Endpoints []felix.Endpoint
	// Tunnel is what the tunnel's last Sync achieved.
	Tunnel TunnelState
	// DataplaneApplied: felix has applied a desired state successfully.
	DataplaneApplied bool
	// LearnedComplete: an earlier plan found the learned routes complete
	// (it stays so).
	LearnedComplete bool
	// LastFull is when the tunnel's filter was last fully reasserted.
	LastFull time.Time
}

// SecretRead is one Secret as last read: its data (nil when never read
// or gone) and the error of the last read.
type SecretRead struct {
	Data map[string][]byte
	Err  error
}

// Plan is the desired state of everything the agent drives.
type Plan struct {
	// BGP is what the speaker converges to (passwords resolved).
	BGP bgp.Desired
	// Skipped are peers left out because their password is unknown.
	Skipped []SkippedPeer
	// Kept are peers whose Secret could not be read again: they keep the
	// password last read.
	Kept      []SkippedPeer
	Dataplane DataplanePlan
	Tunnel    TunnelPlan
	// PodMTUIPIP: the pod MTU must leave room for IPIP.
	PodMTUIPIP bool
	// LearnedComplete: the learned routes can be trusted as the whole
	// set. CompleteNote says why, on the plan that first finds it;
	// until then Pending are the peers it waits for.
	LearnedComplete bool
	CompleteNote    string
	Pending         []netip.Addr
	// Problems make the node unready (before anything is applied).
	Problems []string
	// Unavailable are the pools this node cannot serve, and why
	// (UnavailableReason: why this node cannot tunnel).
	Unavailable       []v1.PoolCondition
	UnavailableReason string
	// Ready and Detail are the readiness if applying succeeds (see
	// verdict).
	Ready  bool
	Detail string
	// Wake is when to plan again if nothing happens before.
	Wake time.Time
}

// DataplanePlan is felix's desired state.
type DataplanePlan struct {
	Endpoints []felix.Endpoint
	Blocks    []netip.Prefix
	NATPools  []nat.Pool
	// Remote are the kernel routes of the learned set. Until
	// RemoteComplete felix programs them but deletes none of the learned
	// routes already in the kernel: local state is never held back.
	Remote         []felix.Route
	RemoteComplete bool
}

// TunnelPlan is what tunl0 and its filter are brought in line with.
type TunnelPlan struct {
	Local model.Node
	Pools []model.Pool
	// Peers are the node addresses IPIP is accepted from.
	Peers []netip.Addr
	// Full reasserts the filter even if it looks right.
	Full bool
}

// SkippedPeer is a peer whose password Secret is missing or unreadable.
type SkippedPeer struct {
	Peer   bgp.PeerConfig
	Secret model.SecretRef
	Err    error
}

// plan computes the desired state from in. It is pure: no I/O, no clock.
func plan(in Inputs) Plan {
	s := in.Snapshot
	var p Plan
	local := s.Local
	if !local.IPv4.IsValid() { // our own annotation not yet in the cache
		local.Name, local.IPv4 = in.Config.NodeName, in.Config.NodeIP
	}
	if want := localASN(in.Config.EnvASN, local, s.BGP); want != in.Config.ASN {
		// GoBGP's global AS is fixed while it runs: keep serving with the
		// running one, unready, until a restart applies the new one.
		p.Problems = append(p.Problems, fmt.Sprintf("AS number changed from %d to %d: restart the agent to apply it", in.Config.ASN, want))
	}
	local.ASNumber = in.Config.ASN

	peers := bgp.DesiredPeers(local, s.Nodes, s.Peers, s.BGP)
	peers, p.Skipped, p.Kept = resolvePasswords(peers, in.Secrets)
	podIPs := make([]netip.Addr, 0, len(s.LocalPods))
	for _, pod := range s.LocalPods {
		podIPs = append(podIPs, pod.IP)
	}
	poolCIDRs := make([]netip.Prefix, 0, len(s.Pools))
	for _, pool := range s.Pools {
		poolCIDRs = append(poolCIDRs, pool.CIDR)
	}
	p.BGP = bgp.Desired{Peers: peers, Paths: bgp.DesiredPaths(local, affinities(s.LocalBlocks), podIPs, s.Pools, s.BGP), PoolCIDRs: poolCIDRs}

	p.Tunnel = TunnelPlan{Local: local, Pools: s.Pools, Peers: ipip.PeerAddrs(s.Nodes),
		Full: in.Now.Sub(in.LastFull) >= in.Config.ResyncInterval}
	tunnelUp := in.Tunnel.Up
	p.PodMTUIPIP = ipip.Enabled(s.Pools) && tunnelUp

	routes, unavailable := remoteRoutes(in.Learned.Routes, peers, s.Pools, s.BGP.ServiceClusterIPs, local, tunnelUp)
	if !tunnelUp {
		for name := range ipipPools(s.Pools) {
			unavailable[name] = true
		}
	}
	p.Unavailable, p.UnavailableReason = unavailableList(unavailable, s.Pools, in.Tunnel.Reason), in.Tunnel.Reason
	vethName := func(ns, pod string) string { return felix.HostVethName(in.Config.InterfacePrefix, ns, pod) }
	p.LearnedComplete, p.CompleteNote, p.Pending, p.Wake = learnedComplete(in, peers)
	p.Dataplane = DataplanePlan{
		Endpoints: localEndpoints(s.LocalPods, in.Endpoints, vethName),
		Blocks:    s.LocalBlocks,
		NATPools:  natPools(s.Pools),
		Remote:    routes, RemoteComplete: p.LearnedComplete,
	}
	p.Ready, p.Detail = readiness(in.Sessions, in.SessionsErr)
	switch {
	case !p.LearnedComplete:
		p.Ready, p.Detail = false, "waiting for End-of-RIB from "+joinAddrs(p.Pending)+" before deleting stale learned routes"
	case !in.DataplaneApplied:
		p.Ready, p.Detail = false, "waiting for the first dataplane apply"
	}
	return p
}

// readiness is ready when every session that should be up is Established,
// as Calico's readiness probe checks BIRD.
func readiness(sessions []bgp.SessionStatus, err error) (bool, string) {
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

// verdict is the node's readiness once p has been applied with the given
// problems (each one makes it unready).
func verdict(p Plan, applyProblems []string) (bool, string) {
	ready, detail := p.Ready, p.Detail
	if problems := append(append([]string(nil), p.Problems...), applyProblems...); len(problems) > 0 {
		ready, detail = false, strings.Join(problems, "; ")
	}
	if len(p.Unavailable) > 0 {
		names := make([]string, len(p.Unavailable))
		for i, u := range p.Unavailable {
			names[i] = u.Pool
		}
		slices.Sort(names)
		detail += fmt.Sprintf("; IPIP pools not served on this node (%s): %s", p.UnavailableReason, strings.Join(names, ", "))
	}
	return ready, detail
}

// localASN is this node's AS: GINGHAM_AS when set, else its Node's
// gingham.dev/ASNumber annotation, else the cluster's.
func localASN(envASN uint32, local model.Node, bgpCfg model.BGPConfig) uint32 {
	switch {
	case envASN != 0:
		return envASN
	case local.ASNumber != 0:
		return local.ASNumber
	}
	return bgpCfg.ASNumber
}

// resolvePasswords fills each peer's TCP-MD5 password from its Secret. A
// peer whose Secret or key is missing is skipped (it could never
// establish); one whose Secret could not be read again keeps the password
// last read.
func resolvePasswords(peers []bgp.PeerConfig, secrets map[string]SecretRead) (out []bgp.PeerConfig, skipped, kept []SkippedPeer) {
	out = peers[:0:0]
	for _, p := range peers {
		if ref := p.PasswordRef; ref.IsSet() {
			read := secrets[ref.Name]
			val, ok := read.Data[ref.Key]
			if !ok {
				err := read.Err
				if err == nil {
					err = fmt.Errorf("secret %s has no key %q", ref.Name, ref.Key)
				}
				skipped = append(skipped, SkippedPeer{Peer: p, Secret: ref, Err: err})
				continue
			}
			if read.Err != nil {
				kept = append(kept, SkippedPeer{Peer: p, Secret: ref, Err: read.Err})
			}
			p.Password = string(val)
		}
		out = append(out, p)
	}
	return out, skipped, kept
}
