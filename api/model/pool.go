package model

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/gingham-net/gingham/api/selector"
	v1 "github.com/gingham-net/gingham/api/v1"
)

// Encap is a pool's encapsulation mode.
type Encap string

// Encapsulation modes.
const (
	EncapNever       Encap = "Never"
	EncapAlways      Encap = "Always"
	EncapCrossSubnet Encap = "CrossSubnet"
)

// Pool is a validated IPPool with its defaults applied.
type Pool struct {
	Name             string
	CIDR             netip.Prefix
	BlockSize        int
	IPIPMode         Encap
	VXLANMode        Encap
	NATOutgoing      bool
	Disabled         bool
	DisableBGPExport bool
	NodeSelector     selector.Selector
	AllowedUses      []v1.IPPoolAllowedUse
}

// Allows reports whether the pool's addresses may be used for u.
func (p Pool) Allows(u v1.IPPoolAllowedUse) bool { return slices.Contains(p.AllowedUses, u) }

// SelectsNode reports whether a node with these labels may take blocks.
func (p Pool) SelectsNode(labels map[string]string) bool { return p.NodeSelector.Matches(labels) }

// PoolFromAPI validates an IPPool and applies Calico's defaults.
func PoolFromAPI(in *v1.IPPool) (Pool, error) {
	s := in.Spec
	p := Pool{Name: in.Name, NATOutgoing: s.NATOutgoing, Disabled: s.Disabled, DisableBGPExport: s.DisableBGPExport}
	cidr, err := netip.ParsePrefix(s.CIDR)
	if err != nil {
		return Pool{}, fieldErr("spec.cidr", s.CIDR, "IPPool CIDR must be a valid subnet")
	}
	if cidr.Masked() != cidr {
		return Pool{}, fieldErr("spec.cidr", s.CIDR, "IPPool CIDR is not strictly masked")
	}
	p.CIDR = cidr
	v4 := cidr.Addr().Is4()
	switch {
	case s.BlockSize != nil:
		p.BlockSize = *s.BlockSize
	case v4:
		p.BlockSize = v1.DefaultBlockSizeIPv4
	default:
		p.BlockSize = v1.DefaultBlockSizeIPv6
	}
	if v4 && (p.BlockSize < 20 || p.BlockSize > 32) || !v4 && (p.BlockSize < 116 || p.BlockSize > 128) {
		return Pool{}, fieldErr("spec.blockSize", p.BlockSize, "blockSize must be between 20 and 32 for IPv4 pools, and between 116 and 128 for IPv6 pools")
	}
	if !p.Disabled && cidr.Bits() > p.BlockSize {
		return Pool{}, fieldErr("spec.blockSize", p.BlockSize, "IP pool size is too small for use with gingham IPAM. It must be equal to or greater than the block size.")
	}
	if p.IPIPMode, err = encap("spec.ipipMode", s.IPIPMode); err != nil {
		return Pool{}, err
	}
	if p.VXLANMode, err = encap("spec.vxlanMode", s.VXLANMode); err != nil {
		return Pool{}, err
	}
	if !v4 && p.IPIPMode != EncapNever {
		return Pool{}, fieldErr("spec.ipipMode", p.IPIPMode, "IPIP is not supported on IPv6 pools")
	}
	if p.IPIPMode != EncapNever && p.VXLANMode != EncapNever {
		return Pool{}, fieldErr("spec.ipipMode", p.IPIPMode, "ipipMode and vxlanMode cannot both be enabled")
	}
	linkLocal := netip.MustParsePrefix("169.254.0.0/16")
	if !v4 {
		linkLocal = netip.MustParsePrefix("fe80::/10")
	}
	if cidr.Overlaps(linkLocal) {
		return Pool{}, fieldErr("spec.cidr", s.CIDR, "IPPool CIDR overlaps with link local range %s", linkLocal)
	}
	sel := s.NodeSelector
	if sel == "" {
		sel = v1.DefaultNodeSelector
	}
	if p.NodeSelector, err = selector.Parse(sel); err != nil {
		return Pool{}, fieldErr("spec.nodeSelector", sel, "%v", err)
	}
	if p.NodeSelector.UsesGlobal() {
		return Pool{}, fieldErr("spec.nodeSelector", sel, "global() is not allowed in an IPPool")
	}
	p.AllowedUses = s.AllowedUses
	if len(p.AllowedUses) == 0 {
		p.AllowedUses = []v1.IPPoolAllowedUse{v1.UseWorkload, v1.UseTunnel}
	}
	for _, u := range p.AllowedUses {
		switch u {
		case v1.UseWorkload, v1.UseTunnel, v1.UseLoadBalancer:
		default:
			return Pool{}, fieldErr("spec.allowedUses", u, "unknown use: %s", u)
		}
	}
	if p.Allows(v1.UseLoadBalancer) && len(p.AllowedUses) > 1 {
		return Pool{}, fieldErr("spec.allowedUses", p.AllowedUses, "LoadBalancer cannot be combined with Workload or Tunnel")
	}
	return p, nil
}

func encap(field string, m v1.EncapMode) (Encap, error) {
	switch m {
	case "", v1.EncapNever:
		return EncapNever, nil
	case v1.EncapAlways:
		return EncapAlways, nil
	case v1.EncapCrossSubnet:
		return EncapCrossSubnet, nil
	}
	return "", fieldErr(field, m, "must be Never, Always or CrossSubnet")
}

// Pools translates a list, returning every valid pool and the errors of the
// invalid ones (each naming its pool), so one bad object never hides the rest.
func Pools(in []v1.IPPool) ([]Pool, []error) {
	var out []Pool
	var errs []error
	for i := range in {
		p, err := PoolFromAPI(&in[i])
		if err != nil {
			errs = append(errs, fmt.Errorf("IPPool %s: %w", in[i].Name, err))
			continue
		}
		out = append(out, p)
	}
	return out, errs
}

// PoolFor returns the pool containing addr, if any.
func PoolFor(pools []Pool, addr netip.Addr) (Pool, bool) {
	for _, p := range pools {
		if p.CIDR.Contains(addr) {
			return p, true
		}
	}
	return Pool{}, false
}
