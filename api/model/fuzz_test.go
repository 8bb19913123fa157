package model

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/gingham-net/gingham/api/v1"
)

// FuzzPoolFromAPI translates arbitrary IPPool specs: never a panic, and
// every pool it accepts keeps the model's invariants.
func FuzzPoolFromAPI(f *testing.F) {
	f.Add("10.244.0.0/16", 26, "Always", "Never", "all()", true)
	f.Add("fd00::/48", 122, "Never", "CrossSubnet", "rack == 'r1' && !has(x)", false)
	f.Add("10.0.0.1/33", -1, "", "", "(((", false)
	f.Fuzz(func(t *testing.T, cidr string, blockSize int, ipip, vxlan, sel string, disabled bool) {
		p, err := PoolFromAPI(&v1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: v1.IPPoolSpec{
			CIDR: cidr, BlockSize: &blockSize, IPIPMode: v1.EncapMode(ipip), VXLANMode: v1.EncapMode(vxlan), NodeSelector: sel, Disabled: disabled}})
		if err != nil {
			return
		}
		v4 := p.CIDR.Addr().Is4()
		switch {
		case p.CIDR.Masked() != p.CIDR:
			t.Fatalf("accepted unmasked %s", p.CIDR)
		case v4 && (p.BlockSize < 20 || p.BlockSize > 32), !v4 && (p.BlockSize < 116 || p.BlockSize > 128):
			t.Fatalf("accepted blockSize %d for %s", p.BlockSize, p.CIDR)
		case !p.Disabled && p.CIDR.Bits() > p.BlockSize:
			t.Fatalf("accepted pool %s smaller than its block /%d", p.CIDR, p.BlockSize)
		case p.IPIPMode != EncapNever && p.VXLANMode != EncapNever:
			t.Fatalf("accepted IPIP and VXLAN together")
		case !v4 && p.IPIPMode != EncapNever:
			t.Fatalf("accepted IPIP on IPv6 %s", p.CIDR)
		}
		_ = p.SelectsNode(map[string]string{"rack": "r1"})
	})
}

// FuzzPeerFromAPI translates arbitrary BGPPeer specs: never a panic, and an
// accepted peer has exactly one of an address and a selector.
func FuzzPeerFromAPI(f *testing.F) {
	f.Add("n1", "", "10.0.0.1:1790", "", int64(65001), "Keep")
	f.Add("", "all()", "", "has(route-reflector)", int64(0), "")
	f.Add("", "x ==", "[fd00::1]:179", "y", int64(-5), "Self")
	f.Fuzz(func(t *testing.T, node, nodeSel, peerIP, peerSel string, asn int64, nhm string) {
		spec := v1.BGPPeerSpec{Node: node, NodeSelector: nodeSel, PeerIP: peerIP, PeerSelector: peerSel}
		if asn != 0 {
			spec.ASNumber = &asn
		}
		if nhm != "" {
			m := v1.NextHopMode(nhm)
			spec.NextHopMode = &m
		}
		p, err := PeerFromAPI(&v1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "b"}, Spec: spec})
		if err != nil {
			return
		}
		if p.PeerAddr.IsValid() == (p.PeerSelector != nil) {
			t.Fatalf("accepted peer with address %v and selector %v", p.PeerAddr, p.PeerSelector)
		}
	})
}
