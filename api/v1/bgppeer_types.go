package v1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// NextHopMode says how a peer sets the next hop of routes it sends.
// +kubebuilder:validation:Enum=Auto;Self;Keep
type NextHopMode string

// SourceAddress says which local address a session uses.
// +kubebuilder:validation:Enum=UseNodeIP;None
type SourceAddress string

// BGPPeerSpec is one BGP peering, or a set of them via selectors.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.node) && size(self.node) > 0 && has(self.nodeSelector) && size(self.nodeSelector) > 0)",message="node and nodeSelector cannot both be set",fieldPath=".nodeSelector"
// +kubebuilder:validation:XValidation:rule="!(has(self.peerIP) && size(self.peerIP) > 0 && has(self.peerSelector) && size(self.peerSelector) > 0)",message="peerIP and peerSelector cannot both be set",fieldPath=".peerSelector"
// +kubebuilder:validation:XValidation:rule="!(has(self.peerSelector) && size(self.peerSelector) > 0 && has(self.asNumber))",message="asNumber must be empty when peerSelector is set",fieldPath=".asNumber"
// +kubebuilder:validation:XValidation:rule="(has(self.peerIP) && size(self.peerIP) > 0) || (has(self.peerSelector) && size(self.peerSelector) > 0)",message="one of peerIP or peerSelector must be set",fieldPath=".peerIP"
// +kubebuilder:validation:XValidation:rule="!(has(self.peerIP) && size(self.peerIP) > 0) || has(self.asNumber)",message="asNumber must be set when peerIP is set",fieldPath=".asNumber"
// +kubebuilder:validation:XValidation:rule="!has(self.reachableBy) || size(self.reachableBy) == 0 || (has(self.peerIP) && size(self.peerIP) > 0)",message="reachableBy must be empty when peerIP is empty",fieldPath=".reachableBy"
// +kubebuilder:validation:XValidation:rule="!(has(self.keepOriginalNextHop) && self.keepOriginalNextHop && has(self.nextHopMode))",message="keepOriginalNextHop and nextHopMode cannot both be set; use nextHopMode: Keep",fieldPath=".nextHopMode"
type BGPPeerSpec struct {
	// Node is the one node this peering applies to. Empty, with no
	// nodeSelector, means every node (a global peer).
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Node string `json:"node,omitempty"`

	// NodeSelector picks the nodes this peering applies to.
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self.matches(r'''%SELECTOR%''')",message="nodeSelector is not a valid selector"
	// +optional
	NodeSelector string `json:"nodeSelector,omitempty"`

	// PeerIP is the peer's address: IP, IP:port or [IPv6]:port.
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="isIP(self) || (self.matches('^[0-9.]+:[0-9]+$') && isIP(self.split(':')[0]) && int(self.split(':')[1]) >= 1 && int(self.split(':')[1]) <= 65535) || (self.matches('^\\\\[[0-9a-fA-F:.]+\\\\]:[0-9]+$') && isIP(self.substring(1, self.lastIndexOf(']'))) && int(self.substring(self.lastIndexOf(']') + 2)) >= 1 && int(self.substring(self.lastIndexOf(']') + 2)) <= 65535)",message="peerIP must be an IP address, IP:port or [IPv6]:port"
	// +optional
	PeerIP string `json:"peerIP,omitempty"`

	// PeerSelector peers with the gingham nodes it matches (route
	// reflectors are built this way); their AS comes from each node.
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self.matches(r'''%SELECTOR%''')",message="peerSelector is not a valid selector"
	// +optional
	PeerSelector string `json:"peerSelector,omitempty"`

	// ASNumber is the peer's AS.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4294967295
	// +optional
	ASNumber *int64 `json:"asNumber,omitempty"`

	// LocalASNumber overrides this node's AS on this session.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4294967295
	// +optional
	LocalASNumber *int64 `json:"localASNumber,omitempty"`

	// KeepOriginalNextHop is deprecated; use nextHopMode: Keep.
	// +optional
	KeepOriginalNextHop bool `json:"keepOriginalNextHop,omitempty"`

	// NextHopMode: Auto (default), Self or Keep.
	// +optional
	NextHopMode *NextHopMode `json:"nextHopMode,omitempty"`

	// Password is the TCP-MD5 password of the session.
	// +optional
	Password *BGPPassword `json:"password,omitempty"`

	// SourceAddress: UseNodeIP (default) binds the session to the node's
	// address; None lets the kernel choose.
	// +kubebuilder:default=UseNodeIP
	// +optional
	SourceAddress SourceAddress `json:"sourceAddress,omitempty"`

	// MaxRestartTime is the graceful-restart time. Default 120s.
	// +optional
	MaxRestartTime *metav1.Duration `json:"maxRestartTime,omitempty"`

	// KeepaliveTime is the BGP keepalive interval; hold time is three
	// times it. Default 20s (hold 60s).
	// +optional
	KeepaliveTime *metav1.Duration `json:"keepaliveTime,omitempty"`

	// TTLSecurity enables GTSM with this many hops (1..255).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=255
	// +optional
	TTLSecurity *int32 `json:"ttlSecurity,omitempty"`

	// ReachableBy is a gateway through which the peer is reached; a
	// /32 static route to the peer is kept via it.
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="reachableBy must be an IP address"
	// +optional
	ReachableBy string `json:"reachableBy,omitempty"`

	// MaxPrefixes limits how many prefixes the peer may send; the session
	// is reset when it sends more (gingham extension).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	// +optional
	MaxPrefixes *int32 `json:"maxPrefixes,omitempty"`

	// AllowPoolRoutes lets this external peer send routes inside our
	// pools' CIDRs; they are refused otherwise (gingham extension).
	// +optional
	AllowPoolRoutes bool `json:"allowPoolRoutes,omitempty"`
}

// BGPPeer configures BGP sessions of some nodes with a peer.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName={bgppeer,bgppeers}
// +kubebuilder:printcolumn:name="Node Selector",type=string,JSONPath=".spec.nodeSelector"
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=".spec.node"
// +kubebuilder:printcolumn:name="Local ASN",type=integer,JSONPath=".spec.localASNumber"
// +kubebuilder:printcolumn:name="Peer Selector",type=string,JSONPath=".spec.peerSelector"
// +kubebuilder:printcolumn:name="Peer IP",type=string,JSONPath=".spec.peerIP"
// +kubebuilder:printcolumn:name="Peer ASN",type=integer,JSONPath=".spec.asNumber"
type BGPPeer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec BGPPeerSpec `json:"spec"`
}

// BGPPeerList is a list of BGPPeers.
// +kubebuilder:object:root=true
type BGPPeerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BGPPeer `json:"items"`
}
