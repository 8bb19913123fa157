package v1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// EncapMode says when traffic of a pool is encapsulated between nodes.
// +kubebuilder:validation:Enum=Never;Always;CrossSubnet
type EncapMode string

// Encapsulation modes of a pool (ipipMode, vxlanMode).
const (
	EncapNever       EncapMode = "Never"
	EncapAlways      EncapMode = "Always"
	EncapCrossSubnet EncapMode = "CrossSubnet"
)

// IPPoolAllowedUse is what addresses of a pool may be used for.
// +kubebuilder:validation:Enum=Workload;Tunnel;LoadBalancer
type IPPoolAllowedUse string

// Allowed uses of a pool.
const (
	UseWorkload     IPPoolAllowedUse = "Workload"
	UseTunnel       IPPoolAllowedUse = "Tunnel"
	UseLoadBalancer IPPoolAllowedUse = "LoadBalancer"
)

// IPPoolSpec is the desired shape of a pool of pod addresses.
//
// +kubebuilder:validation:XValidation:rule="isCIDR(self.cidr) && cidr(self.cidr).ip().family() == 6 || !has(self.blockSize) || (self.blockSize >= 20 && self.blockSize <= 32)",message="blockSize must be between 20 and 32 for IPv4 pools, and between 116 and 128 for IPv6 pools",fieldPath=".blockSize"
// +kubebuilder:validation:XValidation:rule="!isCIDR(self.cidr) || cidr(self.cidr).ip().family() == 4 || !has(self.blockSize) || (self.blockSize >= 116 && self.blockSize <= 128)",message="blockSize must be between 20 and 32 for IPv4 pools, and between 116 and 128 for IPv6 pools",fieldPath=".blockSize"
// +kubebuilder:validation:XValidation:rule="!isCIDR(self.cidr) || (has(self.disabled) && self.disabled) || cidr(self.cidr).prefixLength() <= (has(self.blockSize) ? self.blockSize : (cidr(self.cidr).ip().family() == 4 ? 26 : 122))",message="IP pool size is too small for use with gingham IPAM. It must be equal to or greater than the block size.",fieldPath=".blockSize"
// +kubebuilder:validation:XValidation:rule="!isCIDR(self.cidr) || cidr(self.cidr).ip().family() == 4 || !has(self.ipipMode) || self.ipipMode == 'Never'",message="IPIP is not supported on IPv6 pools",fieldPath=".ipipMode"
// +kubebuilder:validation:XValidation:rule="!has(self.ipipMode) || self.ipipMode == 'Never' || !has(self.vxlanMode) || self.vxlanMode == 'Never'",message="ipipMode and vxlanMode cannot both be enabled",fieldPath=".ipipMode"
// +kubebuilder:validation:XValidation:rule="!isCIDR(self.cidr) || cidr(self.cidr).ip().family() == 6 || !(cidr('169.254.0.0/16').containsIP(cidr(self.cidr).ip()) || cidr(self.cidr).containsIP('169.254.0.0'))",message="IPPool CIDR overlaps with IPv4 link local range 169.254.0.0/16",fieldPath=".cidr"
// +kubebuilder:validation:XValidation:rule="!isCIDR(self.cidr) || cidr(self.cidr).ip().family() == 4 || !(cidr('fe80::/10').containsIP(cidr(self.cidr).ip()) || cidr(self.cidr).containsIP('fe80::'))",message="IPPool CIDR overlaps with IPv6 link local range fe80::/10",fieldPath=".cidr"
// +kubebuilder:validation:XValidation:rule="has(self.blockSize) == has(oldSelf.blockSize) && (!has(self.blockSize) || self.blockSize == oldSelf.blockSize)",message="IPPool BlockSize cannot be modified",fieldPath=".blockSize"
// +kubebuilder:validation:XValidation:rule="!has(self.allowedUses) || !self.allowedUses.exists(u, u == 'LoadBalancer') || self.allowedUses.all(u, u == 'LoadBalancer')",message="LoadBalancer cannot be combined with Workload or Tunnel in allowedUses",fieldPath=".allowedUses"
type IPPoolSpec struct {
	// CIDR of the pool, strictly masked (e.g. 10.244.0.0/16). Immutable.
	// +kubebuilder:validation:MaxLength=48
	// +kubebuilder:validation:XValidation:rule="isCIDR(self)",message="IPPool CIDR must be a valid subnet"
	// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || cidr(self).masked() == cidr(self)",message="IPPool CIDR is not strictly masked"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="IPPool CIDR cannot be modified; follow the IP pool migration guide to avoid corruption"
	CIDR string `json:"cidr"`

	// BlockSize is the prefix length of the blocks the pool is cut into:
	// 20..32 for IPv4 (26 when unset), 116..128 for IPv6 (122 when unset).
	// Immutable.
	// +optional
	BlockSize *int `json:"blockSize,omitempty"`

	// IPIPMode encapsulates traffic between nodes in IP-in-IP: Never,
	// Always, or CrossSubnet (only towards nodes in another subnet).
	// +kubebuilder:default=Never
	// +optional
	IPIPMode EncapMode `json:"ipipMode,omitempty"`

	// VXLANMode is accepted for Calico compatibility; gingham does not
	// implement VXLAN yet and reports such pools as unavailable.
	// +kubebuilder:default=Never
	// +optional
	VXLANMode EncapMode `json:"vxlanMode,omitempty"`

	// NATOutgoing masquerades traffic from the pool to destinations outside
	// every pool.
	// +optional
	NATOutgoing bool `json:"natOutgoing,omitempty"`

	// Disabled stops IPAM from allocating from the pool; existing
	// addresses keep working and their blocks are still routed.
	// +optional
	Disabled bool `json:"disabled,omitempty"`

	// DisableBGPExport keeps the pool's routes out of BGP.
	// +optional
	DisableBGPExport bool `json:"disableBGPExport,omitempty"`

	// NodeSelector picks the nodes that may take blocks from the pool.
	// +kubebuilder:default="all()"
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self.matches(r'''%SELECTOR%''')",message="nodeSelector is not a valid selector"
	// +kubebuilder:validation:XValidation:rule="!self.contains('global()')",message="nodeSelector: global() is not allowed in an IPPool"
	// +optional
	NodeSelector string `json:"nodeSelector,omitempty"`

	// AllowedUses says what the pool's addresses are for.
	// +kubebuilder:default={Workload,Tunnel}
	// +kubebuilder:validation:MaxItems=3
	// +listType=set
	// +optional
	AllowedUses []IPPoolAllowedUse `json:"allowedUses,omitempty"`
}

// IPPool is a range of pod addresses, cut into blocks handed to nodes.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName={ipp,ipps,pool,pools}
// +kubebuilder:printcolumn:name="CIDR",type=string,JSONPath=".spec.cidr"
// +kubebuilder:printcolumn:name="IPIP",type=string,JSONPath=".spec.ipipMode"
// +kubebuilder:printcolumn:name="VXLAN",type=string,JSONPath=".spec.vxlanMode"
// +kubebuilder:printcolumn:name="NAT",type=boolean,JSONPath=".spec.natOutgoing"
// +kubebuilder:printcolumn:name="Disabled",type=boolean,JSONPath=".spec.disabled"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type IPPool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec IPPoolSpec `json:"spec"`
}

// IPPoolList is a list of IPPools.
// +kubebuilder:object:root=true
type IPPoolList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPPool `json:"items"`
}
