package model

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gingham-net/gingham/api/selector"
	v1 "github.com/gingham-net/gingham/api/v1"
)

// BGP defaults, as Calico applies them.
const (
	DefaultASNumber    uint32 = 64512
	DefaultBGPPort     uint16 = 179
	DefaultKeepalive          = 20 * time.Second
	DefaultHoldFactor         = 3 // hold time = keepalive × DefaultHoldFactor
	DefaultRestartTime        = 120 * time.Second
)

// SecretRef names one key of a Secret in the agent's namespace.
type SecretRef struct {
	Name string
	Key  string
}

// IsSet reports whether the reference names a secret.
func (r SecretRef) IsSet() bool { return r.Name != "" }

// Community is a standard (aa:nn) or large (aa:nn:mm) BGP community.
type Community struct {
	Large bool
	// Standard: Value[0]=aa, Value[1]=nn. Large: all three.
	Value [3]uint32
}

// String renders aa:nn or aa:nn:mm.
func (c Community) String() string {
	if c.Large {
		return fmt.Sprintf("%d:%d:%d", c.Value[0], c.Value[1], c.Value[2])
	}
	return fmt.Sprintf("%d:%d", c.Value[0], c.Value[1])
}

// Standard returns the 32-bit encoding of a standard community.
func (c Community) Standard() uint32 { return c.Value[0]<<16 | c.Value[1] }

// ParseCommunity parses aa:nn (each 16 bits) or aa:nn:mm (each 32 bits).
func ParseCommunity(s string) (Community, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 2 && len(parts) != 3 {
		return Community{}, fmt.Errorf("community %q: want aa:nn or aa:nn:mm", s)
	}
	c := Community{Large: len(parts) == 3}
	bits := 16
	if c.Large {
		bits = 32
	}
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 10, bits)
		if err != nil {
			return Community{}, fmt.Errorf("community %q: part %q must be a %d-bit number", s, p, bits)
		}
		c.Value[i] = uint32(v)
	}
	return c, nil
}

// PrefixAdvertisement attaches communities to exported routes inside CIDR.
type PrefixAdvertisement struct {
	CIDR        netip.Prefix
	Communities []Community
}

// BGPConfig is the merged, validated BGPConfiguration of one node: the
// cluster's "default" object with the node's "node.<name>" object on top.
type BGPConfig struct {
	ASNumber             uint32
	MeshEnabled          bool
	ListenPort           uint16
	LogSeverity          string
	ServiceClusterIPs    []netip.Prefix
	PrefixAdvertisements []PrefixAdvertisement
	MeshPassword         SecretRef
	MeshRestartTime      time.Duration
}

// DefaultBGPConfig is the configuration when no BGPConfiguration exists.
func DefaultBGPConfig() BGPConfig {
	return BGPConfig{
		ASNumber:        DefaultASNumber,
		MeshEnabled:     true,
		ListenPort:      DefaultBGPPort,
		LogSeverity:     "Info",
		MeshRestartTime: DefaultRestartTime,
	}
}

// BGPConfigFromAPI merges the cluster default (may be nil) and the node
// override (may be nil): every field the override sets wins. Errors name the
// object and field.
func BGPConfigFromAPI(def, node *v1.BGPConfiguration) (BGPConfig, error) {
	c := DefaultBGPConfig()
	for _, o := range []*v1.BGPConfiguration{def, node} {
		if o == nil {
			continue
		}
		if err := c.apply(&o.Spec); err != nil {
			return BGPConfig{}, fmt.Errorf("BGPConfiguration %s: %w", o.Name, err)
		}
	}
	return c, nil
}

func (c *BGPConfig) apply(s *v1.BGPConfigurationSpec) error {
	if s.LogSeverityScreen != "" {
		c.LogSeverity = s.LogSeverityScreen
	}
	if s.NodeToNodeMeshEnabled != nil {
		c.MeshEnabled = *s.NodeToNodeMeshEnabled
	}
	if s.ASNumber != nil {
		as, err := asNumber("spec.asNumber", *s.ASNumber)
		if err != nil {
			return err
		}
		c.ASNumber = as
	}
	if s.ListenPort != nil {
		if *s.ListenPort < 1 || *s.ListenPort > 65535 {
			return fieldErr("spec.listenPort", *s.ListenPort, "must be from 1 to 65535")
		}
		c.ListenPort = uint16(*s.ListenPort)
	}
	if s.ServiceClusterIPs != nil {
		c.ServiceClusterIPs = nil
		for i, b := range s.ServiceClusterIPs {
			p, err := netip.ParsePrefix(b.CIDR)
			if err != nil || p.Masked() != p {
				return fieldErr(fmt.Sprintf("spec.serviceClusterIPs[%d].cidr", i), b.CIDR, "must be a valid, strictly masked subnet")
			}
			c.ServiceClusterIPs = append(c.ServiceClusterIPs, p)
		}
	}
	if s.PrefixAdvertisements != nil || s.Communities != nil {
		named := map[string]Community{}
		for i, nc := range s.Communities {
			v, err := ParseCommunity(nc.Value)
			if err != nil {
				return fieldErr(fmt.Sprintf("spec.communities[%d].value", i), nc.Value, "%v", err)
			}
			named[nc.Name] = v
		}
		c.PrefixAdvertisements = nil
		for i, pa := range s.PrefixAdvertisements {
			p, err := netip.ParsePrefix(pa.CIDR)
			if err != nil {
				return fieldErr(fmt.Sprintf("spec.prefixAdvertisements[%d].cidr", i), pa.CIDR, "must be a valid subnet")
			}
			out := PrefixAdvertisement{CIDR: p.Masked()}
			for j, name := range pa.Communities {
				v, ok := named[name]
				if !ok {
					if v, err = ParseCommunity(name); err != nil {
						return fieldErr(fmt.Sprintf("spec.prefixAdvertisements[%d].communities[%d]", i, j), name, "neither a community defined in spec.communities nor a literal aa:nn or aa:nn:mm")
					}
				}
				out.Communities = append(out.Communities, v)
			}
			c.PrefixAdvertisements = append(c.PrefixAdvertisements, out)
		}
	}
	if s.NodeMeshPassword != nil && s.NodeMeshPassword.SecretKeyRef != nil {
		r := s.NodeMeshPassword.SecretKeyRef
		c.MeshPassword = SecretRef{Name: r.Name, Key: r.Key}
	}
	if s.NodeMeshMaxRestartTime != nil {
		if s.NodeMeshMaxRestartTime.Duration <= 0 {
			return fieldErr("spec.nodeMeshMaxRestartTime", s.NodeMeshMaxRestartTime.Duration, "must be positive")
		}
		c.MeshRestartTime = s.NodeMeshMaxRestartTime.Duration
	}
	return nil
}

// NextHopMode says how the next hop is set toward a peer.
type NextHopMode string

// Next-hop modes.
const (
	NextHopAuto NextHopMode = "Auto"
	NextHopSelf NextHopMode = "Self"
	NextHopKeep NextHopMode = "Keep"
)

// Peer is a validated BGPPeer with defaults applied.
type Peer struct {
	Name string
	// Scope: Node names one node; else NodeSelector (nil = every node).
	Node         string
	NodeSelector *selector.Selector
	// Exactly one of PeerAddr (valid) and PeerSelector (non-nil) is set.
	PeerAddr     netip.AddrPort
	PeerSelector *selector.Selector
	// ASNumber is the remote AS (0 with PeerSelector: taken from each node).
	ASNumber      uint32
	LocalASNumber uint32 // 0: the node's AS
	NextHopMode   NextHopMode
	Password      SecretRef
	// UseNodeIP binds the session to the node's address (default true).
	UseNodeIP       bool
	RestartTime     time.Duration
	Keepalive       time.Duration
	HoldTime        time.Duration
	TTLSecurity     uint8 // hops; 0 = off
	ReachableBy     netip.Addr
	MaxPrefixes     uint32 // 0 = unlimited
	AllowPoolRoutes bool
}

// IsGlobal reports whether the peering applies to every node.
func (p Peer) IsGlobal() bool { return p.Node == "" && p.NodeSelector == nil }

// AppliesTo reports whether the peering applies to node n.
func (p Peer) AppliesTo(n Node) bool {
	switch {
	case p.Node != "":
		return p.Node == n.Name
	case p.NodeSelector != nil:
		return p.NodeSelector.Matches(n.Labels)
	}
	return true
}

// PeerFromAPI validates a BGPPeer and applies defaults. Errors name the field.
func PeerFromAPI(in *v1.BGPPeer) (Peer, error) {
	s := in.Spec
	p := Peer{
		Name: in.Name, Node: s.Node, NextHopMode: NextHopAuto, UseNodeIP: true,
		RestartTime: DefaultRestartTime, Keepalive: DefaultKeepalive, AllowPoolRoutes: s.AllowPoolRoutes,
	}
	if s.Node != "" && s.NodeSelector != "" {
		return Peer{}, fieldErr("spec.nodeSelector", s.NodeSelector, "node and nodeSelector cannot both be set")
	}
	if s.NodeSelector != "" {
		sel, err := selector.Parse(s.NodeSelector)
		if err != nil {
			return Peer{}, fieldErr("spec.nodeSelector", s.NodeSelector, "%v", err)
		}
		p.NodeSelector = &sel
	}
	switch {
	case s.PeerIP != "" && s.PeerSelector != "":
		return Peer{}, fieldErr("spec.peerSelector", s.PeerSelector, "peerIP and peerSelector cannot both be set")
	case s.PeerIP != "":
		ap, err := ParsePeerIP(s.PeerIP)
		if err != nil {
			return Peer{}, fieldErr("spec.peerIP", s.PeerIP, "%v", err)
		}
		p.PeerAddr = ap
		if s.ASNumber == nil {
			return Peer{}, fieldErr("spec.asNumber", nil, "asNumber must be set when peerIP is set")
		}
	case s.PeerSelector != "":
		sel, err := selector.Parse(s.PeerSelector)
		if err != nil {
			return Peer{}, fieldErr("spec.peerSelector", s.PeerSelector, "%v", err)
		}
		p.PeerSelector = &sel
		if s.ASNumber != nil {
			return Peer{}, fieldErr("spec.asNumber", *s.ASNumber, "asNumber must be empty when peerSelector is set")
		}
	default:
		return Peer{}, fieldErr("spec.peerIP", "", "one of peerIP or peerSelector must be set")
	}
	var err error
	if s.ASNumber != nil {
		if p.ASNumber, err = asNumber("spec.asNumber", *s.ASNumber); err != nil {
			return Peer{}, err
		}
	}
	if s.LocalASNumber != nil {
		if p.LocalASNumber, err = asNumber("spec.localASNumber", *s.LocalASNumber); err != nil {
			return Peer{}, err
		}
	}
	if s.KeepOriginalNextHop && s.NextHopMode != nil {
		return Peer{}, fieldErr("spec.nextHopMode", *s.NextHopMode, "keepOriginalNextHop and nextHopMode cannot both be set; use nextHopMode: Keep")
	}
	if s.KeepOriginalNextHop {
		p.NextHopMode = NextHopKeep
	}
	if s.NextHopMode != nil {
		switch m := NextHopMode(*s.NextHopMode); m {
		case NextHopAuto, NextHopSelf, NextHopKeep:
			p.NextHopMode = m
		default:
			return Peer{}, fieldErr("spec.nextHopMode", *s.NextHopMode, "must be Auto, Self or Keep")
		}
	}
	if s.Password != nil && s.Password.SecretKeyRef != nil {
		r := s.Password.SecretKeyRef
		if r.Name == "" || r.Key == "" {
			return Peer{}, fieldErr("spec.password.secretKeyRef", r.Name+"/"+r.Key, "name and key must be set")
		}
		p.Password = SecretRef{Name: r.Name, Key: r.Key}
	}
	switch s.SourceAddress {
	case "", "UseNodeIP":
	case "None":
		p.UseNodeIP = false
	default:
		return Peer{}, fieldErr("spec.sourceAddress", s.SourceAddress, "must be UseNodeIP or None")
	}
	if d := s.MaxRestartTime; d != nil {
		if d.Duration <= 0 {
			return Peer{}, fieldErr("spec.maxRestartTime", d.Duration, "must be positive")
		}
		p.RestartTime = d.Duration
	}
	if d := s.KeepaliveTime; d != nil {
		if d.Duration < time.Second || d.Duration > 21845*time.Second {
			return Peer{}, fieldErr("spec.keepaliveTime", d.Duration, "must be from 1s to 21845s (hold time is three times it, at most 65535s)")
		}
		p.Keepalive = d.Duration
	}
	p.HoldTime = p.Keepalive * DefaultHoldFactor
	if s.TTLSecurity != nil {
		if *s.TTLSecurity < 1 || *s.TTLSecurity > 255 {
			return Peer{}, fieldErr("spec.ttlSecurity", *s.TTLSecurity, "must be from 1 to 255")
		}
		p.TTLSecurity = uint8(*s.TTLSecurity)
	}
	if s.ReachableBy != "" {
		gw, err := netip.ParseAddr(s.ReachableBy)
		if err != nil {
			return Peer{}, fieldErr("spec.reachableBy", s.ReachableBy, "must be an IP address")
		}
		if !p.PeerAddr.IsValid() {
			return Peer{}, fieldErr("spec.reachableBy", s.ReachableBy, "reachableBy must be empty when peerIP is empty")
		}
		if gw.Is4() != p.PeerAddr.Addr().Is4() {
			return Peer{}, fieldErr("spec.reachableBy", s.ReachableBy, "ReachableBy and PeerIP address family mismatched")
		}
		p.ReachableBy = gw
	}
	if s.MaxPrefixes != nil {
		if *s.MaxPrefixes < 1 {
			return Peer{}, fieldErr("spec.maxPrefixes", *s.MaxPrefixes, "must be at least 1")
		}
		p.MaxPrefixes = uint32(*s.MaxPrefixes)
	}
	return p, nil
}

// Peers translates a list, returning every valid peer and the errors of the
// invalid ones (each naming its BGPPeer).
func Peers(in []v1.BGPPeer) ([]Peer, []error) {
	var out []Peer
	var errs []error
	for i := range in {
		p, err := PeerFromAPI(&in[i])
		if err != nil {
			errs = append(errs, fmt.Errorf("BGPPeer %s: %w", in[i].Name, err))
			continue
		}
		out = append(out, p)
	}
	return out, errs
}

// ParsePeerIP parses IP, IP:port or [IPv6]:port; the port defaults to 179.
func ParsePeerIP(s string) (netip.AddrPort, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return netip.AddrPort{}, fmt.Errorf("zones are not supported")
		}
		return netip.AddrPortFrom(a.Unmap(), DefaultBGPPort), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("must be an IP address, IP:port or [IPv6]:port")
	}
	if ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("port must be from 1 to 65535")
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

func asNumber(field string, v int64) (uint32, error) {
	if v < 1 || v > 4294967295 {
		return 0, fieldErr(field, v, "must be an AS number from 1 to 4294967295")
	}
	return uint32(v), nil
}
