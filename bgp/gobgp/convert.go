package gobgp

import (
	"fmt"
	"net/netip"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gbgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"github.com/gingham-net/gingham/api/model"
	"github.com/gingham-net/gingham/bgp"
)

const (
	defaultConnectRetry = 5 * time.Second
	idleHoldAfterReset  = 5 * time.Second
)

func family(a netip.Addr) gbgp.Family {
	if a.Is4() {
		return gbgp.RF_IPv4_UC
	}
	return gbgp.RF_IPv6_UC
}

func apiFamily(a netip.Addr) *api.Family {
	f := family(a)
	return apiutil.ToApiFamily(f.Afi(), f.Safi())
}

func secs(d time.Duration) uint64 { return uint64((d + time.Second - 1) / time.Second) }

// peerToAPI renders a session. restarting sets the GR restarting flag.
func peerToAPI(p bgp.PeerConfig, globalASN uint32, restarting bool, deferral time.Duration) *api.Peer {
	keep, hold, retry := p.Keepalive, p.Hold, p.ConnectRetry
	if keep == 0 {
		keep = model.DefaultKeepalive
	}
	if hold == 0 {
		hold = keep * model.DefaultHoldFactor
	}
	if retry == 0 {
		retry = defaultConnectRetry
	}
	gr := p.RestartTime > 0
	afi := &api.AfiSafi{
		Config:            &api.AfiSafiConfig{Family: apiFamily(p.Address), Enabled: true},
		MpGracefulRestart: &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: gr}},
	}
	if p.MaxPrefixes > 0 {
		afi.PrefixLimits = &api.PrefixLimit{Family: apiFamily(p.Address), MaxPrefixes: p.MaxPrefixes}
	}
	out := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: p.Address.String(),
			PeerAsn:         p.ASN,
			AuthPassword:    p.Password,
			Description:     string(p.Type),
		},
		Transport: &api.Transport{RemotePort: uint32(p.RemotePort()), PassiveMode: p.Passive},
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry: secs(retry), HoldTime: secs(hold), KeepaliveInterval: secs(keep),
			IdleHoldTimeAfterReset: secs(idleHoldAfterReset),
		}},
		AfiSafis: []*api.AfiSafi{afi},
	}
	if p.LocalASN != 0 && p.LocalASN != globalASN {
		out.Conf.LocalAsn = p.LocalASN
	}
	if p.SourceAddr.IsValid() {
		out.Transport.LocalAddress = p.SourceAddr.String()
	}
	if gr {
		out.GracefulRestart = &api.GracefulRestart{
			Enabled:         true,
			RestartTime:     uint32(secs(p.RestartTime)),
			DeferralTime:    uint32(secs(deferral)),
			LocalRestarting: restarting,
		}
	}
	if p.RRClient {
		out.RouteReflector = &api.RouteReflector{RouteReflectorClient: true, RouteReflectorClusterId: p.ClusterID.String()}
	}
	switch {
	case p.TTLSecurity > 0:
		out.TtlSecurity = &api.TtlSecurity{Enabled: true, TtlMin: 256 - uint32(p.TTLSecurity)}
	case p.Multihop > 1 && p.ASN != localASN(p, globalASN):
		out.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(p.Multihop)}
	}
	return out
}

func localASN(p bgp.PeerConfig, globalASN uint32) uint32 {
	if p.LocalASN != 0 {
		return p.LocalASN
	}
	return globalASN
}

// pathToAPI renders an originated path (origin IGP).
func pathToAPI(p bgp.Path) (*apiutil.Path, error) {
	nlri, err := gbgp.NewIPAddrPrefix(p.Prefix)
	if err != nil {
		return nil, fmt.Errorf("path %v: %w", p.Prefix, err)
	}
	attrs := []gbgp.PathAttributeInterface{gbgp.NewPathAttributeOrigin(gbgp.BGP_ORIGIN_ATTR_TYPE_IGP)}
	fam := family(p.Prefix.Addr())
	if p.Prefix.Addr().Is4() && p.NextHop.Is4() {
		nh, err := gbgp.NewPathAttributeNextHop(p.NextHop)
		if err != nil {
			return nil, fmt.Errorf("path %v: next hop %v: %w", p.Prefix, p.NextHop, err)
		}
		attrs = append(attrs, nh)
	} else {
		mp, err := gbgp.NewPathAttributeMpReachNLRI(fam, []gbgp.PathNLRI{{NLRI: nlri}}, p.NextHop)
		if err != nil {
			return nil, fmt.Errorf("path %v: next hop %v: %w", p.Prefix, p.NextHop, err)
		}
		attrs = append(attrs, mp)
	}
	var std []uint32
	var large []*gbgp.LargeCommunity
	for _, c := range p.Communities {
		if c.Large {
			large = append(large, gbgp.NewLargeCommunity(c.Value[0], c.Value[1], c.Value[2]))
		} else {
			std = append(std, c.Standard())
		}
	}
	if len(std) > 0 {
		attrs = append(attrs, gbgp.NewPathAttributeCommunities(std))
	}
	if len(large) > 0 {
		attrs = append(attrs, gbgp.NewPathAttributeLargeCommunities(large))
	}
	return &apiutil.Path{Family: fam, Nlri: nlri, Attrs: attrs}, nil
}

func stateFromFSM(s gbgp.FSMState) bgp.SessionState {
	switch s {
	case gbgp.BGP_FSM_CONNECT:
		return bgp.StateConnect
	case gbgp.BGP_FSM_ACTIVE:
		return bgp.StateActive
	case gbgp.BGP_FSM_OPENSENT:
		return bgp.StateOpenSent
	case gbgp.BGP_FSM_OPENCONFIRM:
		return bgp.StateOpenConfirm
	case gbgp.BGP_FSM_ESTABLISHED:
		return bgp.StateEstablished
	}
	return bgp.StateIdle
}

func stateFromAPI(s api.PeerState_SessionState) bgp.SessionState {
	switch s {
	case api.PeerState_SESSION_STATE_CONNECT:
		return bgp.StateConnect
	case api.PeerState_SESSION_STATE_ACTIVE:
		return bgp.StateActive
	case api.PeerState_SESSION_STATE_OPENSENT:
		return bgp.StateOpenSent
	case api.PeerState_SESSION_STATE_OPENCONFIRM:
		return bgp.StateOpenConfirm
	case api.PeerState_SESSION_STATE_ESTABLISHED:
		return bgp.StateEstablished
	}
	return bgp.StateIdle
}
