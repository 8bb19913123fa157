package model

import (
	"net/netip"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	v1 "github.com/gingham-net/gingham/api/v1"
)

// Node is a Kubernetes Node's BGP identity, read from its annotations.
type Node struct {
	Name   string
	Labels map[string]string
	// IPv4 is the node's BGP address with the prefix length of its subnet
	// (CrossSubnet compares against it). Invalid when the node has none yet.
	IPv4 netip.Prefix
	// ASNumber overrides the cluster AS when non-zero.
	ASNumber uint32
	// RRClusterID makes the node a route reflector when valid.
	RRClusterID netip.Addr
	// IPIPTunnelAddr is the address on tunl0, when allocated.
	IPIPTunnelAddr netip.Addr
}

// IsRouteReflector reports whether the node reflects routes.
func (n Node) IsRouteReflector() bool { return n.RRClusterID.IsValid() }

// NodeFromAPI reads a Node's annotations. Annotation errors name the
// annotation; a node without an address is valid (not yet started).
func NodeFromAPI(in *corev1.Node) (Node, error) {
	n := Node{Name: in.Name, Labels: in.Labels}
	a := in.Annotations
	if s := a[v1.AnnotationIPv4Address]; s != "" {
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() {
			return Node{}, fieldErr("metadata.annotations["+v1.AnnotationIPv4Address+"]", s, "must be an IPv4 address with prefix length, e.g. 10.0.0.5/24")
		}
		n.IPv4 = p
	}
	if s := a[v1.AnnotationASNumber]; s != "" {
		as, err := strconv.ParseUint(s, 10, 32)
		if err != nil || as == 0 {
			return Node{}, fieldErr("metadata.annotations["+v1.AnnotationASNumber+"]", s, "must be an AS number from 1 to 4294967295")
		}
		n.ASNumber = uint32(as)
	}
	if s := a[v1.AnnotationRouteReflectorClusterID]; s != "" {
		id, err := netip.ParseAddr(s)
		if err != nil || !id.Is4() {
			return Node{}, fieldErr("metadata.annotations["+v1.AnnotationRouteReflectorClusterID+"]", s, "must be an IPv4-formatted cluster ID")
		}
		n.RRClusterID = id
	}
	if s := a[v1.AnnotationIPv4IPIPTunnelAddr]; s != "" {
		ip, err := netip.ParseAddr(s)
		if err != nil || !ip.Is4() {
			return Node{}, fieldErr("metadata.annotations["+v1.AnnotationIPv4IPIPTunnelAddr+"]", s, "must be an IPv4 address")
		}
		n.IPIPTunnelAddr = ip
	}
	return n, nil
}
