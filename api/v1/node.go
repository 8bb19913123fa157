package v1

// A node's BGP identity lives on the Kubernetes Node as annotations, as
// Calico's Kubernetes datastore keeps it: the Node already exists, its
// lifecycle is the node's, and a second resource would have to be kept in
// step with it (and garbage-collected) for no gain. The internal model
// (api/model) parses and validates these once.
const (
	// AnnotationIPv4Address is the node's BGP address with its prefix
	// length, e.g. 10.0.0.5/24; the prefix decides CrossSubnet.
	AnnotationIPv4Address = "gingham.dev/IPv4Address"
	// AnnotationASNumber overrides the cluster AS for this node.
	AnnotationASNumber = "gingham.dev/ASNumber"
	// AnnotationRouteReflectorClusterID makes the node a route reflector.
	AnnotationRouteReflectorClusterID = "gingham.dev/RouteReflectorClusterID"
	// AnnotationIPv4IPIPTunnelAddr is the address on tunl0.
	AnnotationIPv4IPIPTunnelAddr = "gingham.dev/IPv4IPIPTunnelAddr"
)

// Default values shared by the agent, the IPAM library and ginghamctl.
const (
	DefaultASNumber       = 64512
	DefaultListenPort     = 179
	DefaultBlockSizeIPv4  = 26
	DefaultBlockSizeIPv6  = 122
	DefaultNodeSelector   = "all()"
	DefaultBGPConfigName  = "default"
	NodeBGPConfigPrefix   = "node."
	DefaultIPAMConfigName = "default"
)
