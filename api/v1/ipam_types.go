package v1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// AllocationAttribute describes who holds one or more addresses of a block.
type AllocationAttribute struct {
	// HandleID is the allocation's handle (<network>.<containerID>).
	// +optional
	HandleID *string `json:"handle_id,omitempty"`
	// Secondary holds owner details: pod, namespace, node, type.
	// +optional
	Secondary map[string]string `json:"secondary,omitempty"`
}

// IPAMBlockSpec is one block of a pool and the state of its addresses.
// Written only by the IPAM library, compare-and-swap on resourceVersion.
type IPAMBlockSpec struct {
	// CIDR of the block.
	// +kubebuilder:validation:MaxLength=48
	CIDR string `json:"cidr"`
	// Affinity is host:<node> when the block belongs to a node.
	// +kubebuilder:validation:Pattern=`^(host|virtual):[a-zA-Z0-9_.-]+$`
	// +optional
	Affinity *string `json:"affinity,omitempty"`
	// AffinityClaimTime is when the affinity was set.
	// +optional
	AffinityClaimTime *metav1.Time `json:"affinityClaimTime,omitempty"`
	// StrictAffinity forbids borrowing from this block.
	// +optional
	StrictAffinity bool `json:"strictAffinity,omitempty"`
	// Allocations has one slot per address: nil when free, else an index
	// into Attributes.
	Allocations []*int `json:"allocations"`
	// Unallocated is the FIFO list of free ordinals.
	Unallocated []int `json:"unallocated"`
	// Attributes are the allocation owners.
	Attributes []AllocationAttribute `json:"attributes"`
	// SequenceNumber increases on every allocation.
	// +optional
	SequenceNumber uint64 `json:"sequenceNumber,omitempty"`
	// SequenceNumberForAllocation records, per ordinal (as a string), the
	// sequence number of its current allocation, so a late release of an
	// old allocation cannot free a reused address.
	// +optional
	SequenceNumberForAllocation map[string]uint64 `json:"sequenceNumberForAllocation,omitempty"`
	// Deleted marks a block being removed.
	// +optional
	Deleted bool `json:"deleted,omitempty"`
}

// IPAMBlock is a block of addresses of a pool. Name: the CIDR with '.',
// ':' and '/' replaced by '-'.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName={ipamblock,ipamblocks}
// +kubebuilder:printcolumn:name="CIDR",type=string,JSONPath=".spec.cidr"
// +kubebuilder:printcolumn:name="Affinity",type=string,JSONPath=".spec.affinity"
type IPAMBlock struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec IPAMBlockSpec `json:"spec"`
}

// IPAMBlockList is a list of IPAMBlocks.
// +kubebuilder:object:root=true
type IPAMBlockList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPAMBlock `json:"items"`
}

// BlockAffinityState is the life cycle of an affinity.
// +kubebuilder:validation:Enum=pending;confirmed;pendingDeletion
type BlockAffinityState string

// Affinity states: claimed in two phases (pending, then confirmed once the
// block exists), released in two (pendingDeletion, then deleted).
const (
	AffinityPending         BlockAffinityState = "pending"
	AffinityConfirmed       BlockAffinityState = "confirmed"
	AffinityPendingDeletion BlockAffinityState = "pendingDeletion"
)

// BlockAffinitySpec ties a block to a node.
type BlockAffinitySpec struct {
	// State of the claim.
	State BlockAffinityState `json:"state"`
	// Node the block belongs to.
	// +kubebuilder:validation:MaxLength=253
	Node string `json:"node"`
	// Type of affinity: host.
	// +kubebuilder:default=host
	// +optional
	Type string `json:"type,omitempty"`
	// CIDR of the block.
	// +kubebuilder:validation:MaxLength=48
	CIDR string `json:"cidr"`
	// Deleted marks an affinity being removed.
	// +optional
	Deleted bool `json:"deleted,omitempty"`
}

// BlockAffinity says a block belongs to a node. Name: <node>-<block name>.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName={affinity,affinities}
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=".spec.node"
// +kubebuilder:printcolumn:name="CIDR",type=string,JSONPath=".spec.cidr"
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=".spec.state"
type BlockAffinity struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec BlockAffinitySpec `json:"spec"`
}

// BlockAffinityList is a list of BlockAffinities.
// +kubebuilder:object:root=true
type BlockAffinityList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BlockAffinity `json:"items"`
}

// IPAMHandleSpec indexes the blocks an allocation handle holds addresses in.
type IPAMHandleSpec struct {
	// HandleID is the allocation key (<network>.<containerID>).
	HandleID string `json:"handleID"`
	// Block maps block CIDR to the number of addresses held there.
	// +optional
	Block map[string]int `json:"block,omitempty"`
	// Deleted marks a handle being removed.
	// +optional
	Deleted bool `json:"deleted,omitempty"`
}

// IPAMHandle is the secondary index from an allocation handle to its blocks.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName={ipamhandle,ipamhandles}
type IPAMHandle struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec IPAMHandleSpec `json:"spec"`
}

// IPAMHandleList is a list of IPAMHandles.
// +kubebuilder:object:root=true
type IPAMHandleList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPAMHandle `json:"items"`
}

// IPAMConfigurationSpec holds cluster-wide IPAM settings.
//
// +kubebuilder:validation:XValidation:rule="!has(self.maxBlocksPerHost) || self.maxBlocksPerHost == 0 || self.strictAffinity",message="maxBlocksPerHost requires strictAffinity",fieldPath=".maxBlocksPerHost"
// +kubebuilder:validation:XValidation:rule="self.strictAffinity || !has(self.autoAllocateBlocks) || self.autoAllocateBlocks",message="autoAllocateBlocks cannot be false when strictAffinity is false",fieldPath=".autoAllocateBlocks"
type IPAMConfigurationSpec struct {
	// StrictAffinity forbids borrowing addresses from other nodes' blocks.
	StrictAffinity bool `json:"strictAffinity"`
	// MaxBlocksPerHost limits the blocks one node may claim; 0 means 20.
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxBlocksPerHost int32 `json:"maxBlocksPerHost,omitempty"`
	// AutoAllocateBlocks lets nodes claim new blocks. Default true.
	// +kubebuilder:default=true
	// +optional
	AutoAllocateBlocks *bool `json:"autoAllocateBlocks,omitempty"`
}

// IPAMConfiguration is the cluster's IPAM settings; the one named default
// is used.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName={ipamconfig,ipamconfigs}
type IPAMConfiguration struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec IPAMConfigurationSpec `json:"spec"`
}

// IPAMConfigurationList is a list of IPAMConfigurations.
// +kubebuilder:object:root=true
type IPAMConfigurationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPAMConfiguration `json:"items"`
}
