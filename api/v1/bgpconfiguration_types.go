package v1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// ServiceClusterIPBlock is a service CIDR every node advertises.
type ServiceClusterIPBlock struct {
	// CIDR of the service range.
	// +kubebuilder:validation:MaxLength=48
	// +kubebuilder:validation:XValidation:rule="isCIDR(self) && cidr(self).masked() == cidr(self)",message="serviceClusterIPs cidr must be a valid, strictly masked subnet"
	CIDR string `json:"cidr"`
}

// Community is a named BGP community value.
type Community struct {
	// Name that prefixAdvertisements refer to.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`
	// Value: standard aa:nn or large aa:nn:mm.
	// +kubebuilder:validation:Pattern=`^(\d+):(\d+)$|^(\d+):(\d+):(\d+)$`
	Value string `json:"value"`
}

// PrefixAdvertisement attaches communities to the routes inside a CIDR.
type PrefixAdvertisement struct {
	// CIDR whose routes get the communities.
	// +kubebuilder:validation:MaxLength=48
	// +kubebuilder:validation:XValidation:rule="isCIDR(self)",message="prefixAdvertisements cidr must be a valid subnet"
	CIDR string `json:"cidr"`
	// Communities: names from spec.communities or literal aa:nn / aa:nn:mm.
	// +kubebuilder:validation:MaxItems=16
	Communities []string `json:"communities,omitempty"`
}

// BGPConfigurationSpec is the cluster's (name default) or one node's (name
// node.<nodename>) BGP configuration.
//
// +kubebuilder:validation:XValidation:rule="!has(self.nodeMeshPassword) || !has(self.nodeToNodeMeshEnabled) || self.nodeToNodeMeshEnabled",message="nodeMeshPassword cannot be set when nodeToNodeMeshEnabled is false",fieldPath=".nodeMeshPassword"
// +kubebuilder:validation:XValidation:rule="!has(self.communities) || self.communities.all(c, has(self.prefixAdvertisements) && self.prefixAdvertisements.exists(p, has(p.communities) && c.name in p.communities))",message="communities are defined but not used in prefixAdvertisements",fieldPath=".communities"
type BGPConfigurationSpec struct {
	// LogSeverityScreen is the speaker's log level: Debug, Info, Warning,
	// Error, Fatal.
	// +kubebuilder:validation:Enum=Debug;Info;Warning;Error;Fatal
	// +kubebuilder:default=Info
	// +optional
	LogSeverityScreen string `json:"logSeverityScreen,omitempty"`

	// NodeToNodeMeshEnabled peers every node with every other (iBGP).
	// Default true.
	// +kubebuilder:default=true
	// +optional
	NodeToNodeMeshEnabled *bool `json:"nodeToNodeMeshEnabled,omitempty"`

	// ASNumber is the default AS of every node. Default 64512.
	// +kubebuilder:default=64512
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4294967295
	// +optional
	ASNumber *int64 `json:"asNumber,omitempty"`

	// ListenPort is the BGP port. Default 179.
	// +kubebuilder:default=179
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	ListenPort *int32 `json:"listenPort,omitempty"`

	// ServiceClusterIPs are advertised by every node; learned routes
	// inside them are never programmed.
	// +kubebuilder:validation:MaxItems=16
	// +optional
	ServiceClusterIPs []ServiceClusterIPBlock `json:"serviceClusterIPs,omitempty"`

	// Communities are named community values.
	// +kubebuilder:validation:MaxItems=64
	// +optional
	Communities []Community `json:"communities,omitempty"`

	// PrefixAdvertisements attach communities to exported routes.
	// +kubebuilder:validation:MaxItems=64
	// +optional
	PrefixAdvertisements []PrefixAdvertisement `json:"prefixAdvertisements,omitempty"`

	// NodeMeshPassword is the TCP-MD5 password of mesh sessions.
	// +optional
	NodeMeshPassword *BGPPassword `json:"nodeMeshPassword,omitempty"`

	// NodeMeshMaxRestartTime is the graceful-restart time of mesh
	// sessions. Default 120s.
	// +optional
	NodeMeshMaxRestartTime *metav1.Duration `json:"nodeMeshMaxRestartTime,omitempty"`
}

// BGPConfiguration holds BGP settings: "default" for the cluster,
// "node.<name>" for one node.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName={bgpconfig,bgpconfigs}
// +kubebuilder:validation:XValidation:rule="self.metadata.name == 'default' || self.metadata.name.startsWith('node.')",message="metadata.name must be 'default' or 'node.<nodename>'"
type BGPConfiguration struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec BGPConfigurationSpec `json:"spec,omitempty"`
}

// BGPConfigurationList is a list of BGPConfigurations.
// +kubebuilder:object:root=true
type BGPConfigurationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BGPConfiguration `json:"items"`
}
