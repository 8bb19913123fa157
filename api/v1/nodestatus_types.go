package v1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// BGPSessionStatus is one BGP session of a node, as `ginghamctl node status`
// shows it.
type BGPSessionStatus struct {
	// PeerAddress of the session.
	PeerAddress string `json:"peerAddress"`
	// PeerType: node-to-node mesh, global, node specific, route reflector.
	PeerType string `json:"peerType"`
	// State: Idle, Connect, Active, OpenSent, OpenConfirm, Established.
	State string `json:"state"`
	// Since is when the session entered its state.
	// +optional
	Since *metav1.Time `json:"since,omitempty"`
	// Info is extra detail (last error, prefixes received).
	// +optional
	Info string `json:"info,omitempty"`
	// PrefixesReceived from the peer.
	// +optional
	PrefixesReceived int64 `json:"prefixesReceived,omitempty"`
	// PrefixesAdvertised to the peer.
	// +optional
	PrefixesAdvertised int64 `json:"prefixesAdvertised,omitempty"`
}

// PoolCondition reports a pool the node cannot serve as asked.
type PoolCondition struct {
	// Pool name.
	Pool string `json:"pool"`
	// Reason, e.g. IPIPUnsupported.
	Reason string `json:"reason"`
	// Message for people.
	Message string `json:"message"`
}

// GinghamNodeStatusStatus is what the agent on one node reports.
type GinghamNodeStatusStatus struct {
	// AgentVersion of gingham-node.
	// +optional
	AgentVersion string `json:"agentVersion,omitempty"`
	// AgentState: Starting, Ready, Degraded, Stopping.
	// +optional
	AgentState string `json:"agentState,omitempty"`
	// LastUpdated is when the agent last wrote this status.
	// +optional
	LastUpdated *metav1.Time `json:"lastUpdated,omitempty"`
	// Sessions are the node's BGP sessions.
	// +optional
	Sessions []BGPSessionStatus `json:"sessions,omitempty"`
	// RoutesProgrammed counts kernel routes the agent owns.
	// +optional
	RoutesProgrammed int64 `json:"routesProgrammed,omitempty"`
	// RoutesLearned counts routes learned over BGP.
	// +optional
	RoutesLearned int64 `json:"routesLearned,omitempty"`
	// RoutesAdvertised counts routes this node originates.
	// +optional
	RoutesAdvertised int64 `json:"routesAdvertised,omitempty"`
	// UnavailablePools lists pools this node cannot serve, and why.
	// +optional
	UnavailablePools []PoolCondition `json:"unavailablePools,omitempty"`
}

// GinghamNodeStatus is the status of the agent on one node; its name is the
// node's name and only that node's agent writes it.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName={gns,nodestatus}
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=".status.agentState"
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=".status.agentVersion"
// +kubebuilder:printcolumn:name="Routes",type=integer,JSONPath=".status.routesProgrammed"
// +kubebuilder:printcolumn:name="Updated",type=date,JSONPath=".status.lastUpdated"
type GinghamNodeStatus struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Status GinghamNodeStatusStatus `json:"status,omitempty"`
}

// GinghamNodeStatusList is a list of GinghamNodeStatuses.
// +kubebuilder:object:root=true
type GinghamNodeStatusList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []GinghamNodeStatus `json:"items"`
}
