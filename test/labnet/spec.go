package labnet

import (
	"fmt"
	"net/netip"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/gingham-net/gingham/api/v1"
)

// RouterKind names the routing daemon a router namespace runs.
type RouterKind string

// The routing daemons the lab runs (Debian's frr and bird2).
const (
	FRR  RouterKind = "frr"
	BIRD RouterKind = "bird"
)

// Spec declares a lab. Names are short (they become parts of namespace and
// interface names); every namespace is Prefix + name.
type Spec struct {
	Prefix   string    // namespace prefix, e.g. "ghl-"
	RunDir   string    // configs, sockets, logs, per-node state
	Segments []Segment // L2 segments (bridges)
	Links    []Link    // point-to-point links between routers
	Routers  []Router
	Nodes    []Node
	PoolCIDR netip.Prefix // the default IPPool
	// Objects are the API objects the topology needs besides the default
	// pool (BGPConfiguration, BGPPeers), applied before agents start.
	Objects []client.Object
}

// Segment is an L2 network: a bridge in the Host namespace (a router, or a
// plain switch namespace created for it) that nodes attach to.
type Segment struct {
	Name    string
	CIDR    netip.Prefix
	Host    string     // namespace (short name) holding the bridge
	Gateway netip.Addr // Host's address on the bridge; zero for none
}

// Bridge is the bridge device's name inside its host namespace.
func (s Segment) Bridge() string { return ifName("br-" + s.Name) }

// Link is a point-to-point veth between two routers, named after the far
// end on each side.
type Link struct {
	A, B         string
	AAddr, BAddr netip.Prefix
}

// Router is a namespace running FRR (bgpd+zebra) or BIRD.
type Router struct {
	Name      string
	Kind      RouterKind
	AS        uint32
	RouterID  netip.Addr
	Neighbors []Neighbor
	Networks  []netip.Prefix // prefixes it originates
	FIB       bool           // install learned routes into its kernel (BIRD; FRR always does)
}

// Neighbor is one BGP session of a router.
type Neighbor struct {
	Name     string // for logs and docs: a node or router name
	Addr     netip.Addr
	AS       uint32
	RRClient bool // the router reflects routes to it (iBGP)
	Node     bool // the peer is a gingham node (Established only once the agent runs)
}

// Node is a Kubernetes node: a namespace whose eth0 is on Segment.
type Node struct {
	Name        string // Kubernetes Node name and namespace short name
	Segment     string
	Addr        netip.Prefix // eth0 address, GINGHAM_IP
	AS          uint32       // GINGHAM_AS; 0 for the cluster AS
	Gateway     netip.Addr   // default route; zero for none
	Labels      map[string]string
	RRClusterID string
}

// Lab topology constants, shared by the lab and its docs.
const (
	SpineAS   = 65000
	ClusterAS = v1.DefaultASNumber
)

// DefaultPool returns the lab's default IPPool CIDR (block size 26).
func DefaultPool() netip.Prefix { return netip.MustParsePrefix("10.244.0.0/16") }

// ToRSpec is the lab of `make lab` and issue 5's ToR test: racks rack1
// (10.0.1.0/24) and rack2 (10.0.2.0/24), each with nodesPerRack nodes
// (10.0.<r>.11, .12, ...; AS 650<r><n>) on a bridge in the rack's FRR ToR
// (10.0.<r>.1, AS 6500<r>), which peers eBGP with each node and with a BIRD
// spine (AS 65000) over a /31 (spine 10.0.0.<2r-2>, ToR 10.0.0.<2r-1>).
// Node-to-node mesh is off; one BGPPeer per rack selects the rack's nodes.
func ToRSpec(prefix, runDir string, nodesPerRack int) Spec {
	s := Spec{Prefix: prefix, RunDir: runDir, PoolCIDR: DefaultPool()}
	spine := Router{Name: "spine", Kind: BIRD, AS: SpineAS, RouterID: netip.MustParseAddr("10.0.0.0"), FIB: true}
	for r := 1; r <= 2; r++ {
		rack := "rack" + strconv.Itoa(r)
		tor := "tor" + strconv.Itoa(r)
		torAS := uint32(65000 + r)
		gw := netip.AddrFrom4([4]byte{10, 0, byte(r), 1})
		spineAddr := netip.AddrFrom4([4]byte{10, 0, 0, byte(2*r - 2)})
		torAddr := netip.AddrFrom4([4]byte{10, 0, 0, byte(2*r - 1)})
		s.Segments = append(s.Segments, Segment{Name: rack, CIDR: netip.PrefixFrom(gw, 24).Masked(), Host: tor, Gateway: gw})
		s.Links = append(s.Links, Link{A: "spine", B: tor, AAddr: netip.PrefixFrom(spineAddr, 31), BAddr: netip.PrefixFrom(torAddr, 31)})
		spine.Neighbors = append(spine.Neighbors, Neighbor{Name: tor, Addr: torAddr, AS: torAS})
		t := Router{Name: tor, Kind: FRR, AS: torAS, RouterID: gw, Networks: []netip.Prefix{netip.PrefixFrom(gw, 24).Masked()}}
		t.Neighbors = append(t.Neighbors, Neighbor{Name: "spine", Addr: spineAddr, AS: SpineAS})
		for n := 1; n <= nodesPerRack; n++ {
			name := fmt.Sprintf("%s-node%d", rack, n)
			addr := netip.AddrFrom4([4]byte{10, 0, byte(r), byte(10 + n)})
			as := uint32(65000 + 10*r + n)
			s.Nodes = append(s.Nodes, Node{Name: name, Segment: rack, Addr: netip.PrefixFrom(addr, 24), AS: as, Gateway: gw,
				Labels: map[string]string{"rack": rack}})
			t.Neighbors = append(t.Neighbors, Neighbor{Name: name, Addr: addr, AS: as, Node: true})
		}
		s.Routers = append(s.Routers, t)
		s.Objects = append(s.Objects, bgpPeer(tor, "rack == '"+rack+"'", gw, torAS))
	}
	s.Routers = append([]Router{spine}, s.Routers...)
	s.Objects = append(s.Objects, bgpConfig(false))
	return s
}

// MeshSpec is n nodes (node1..; 10.0.0.11, ...) on one bridge in a plain
// switch namespace, in the cluster AS with the node-to-node mesh on.
func MeshSpec(prefix, runDir string, n int) Spec {
	s := Spec{Prefix: prefix, RunDir: runDir, PoolCIDR: DefaultPool()}
	// Like every real host, nodes have a default route (here to the
	// switch's address): proxy ARP answers for 169.254.1.1 only when the
	// host has a route to it.
	gw := netip.MustParseAddr("10.0.0.1")
	s.Segments = []Segment{{Name: "lan", CIDR: netip.MustParsePrefix("10.0.0.0/24"), Host: "switch", Gateway: gw}}
	for i := 1; i <= n; i++ {
		s.Nodes = append(s.Nodes, Node{Name: fmt.Sprintf("node%d", i), Segment: "lan", Gateway: gw,
			Addr: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(10 + i)}), 24)})
	}
	s.Objects = []client.Object{bgpConfig(true)}
	return s
}

// RRSpec is n nodes on one bridge hosted by a BIRD route reflector "rr"
// (10.0.0.254, cluster AS, every node a client), node-to-node mesh off and
// one global BGPPeer to the reflector.
func RRSpec(prefix, runDir string, n int) Spec {
	s := MeshSpec(prefix, runDir, n)
	rrAddr := netip.MustParseAddr("10.0.0.254")
	s.Segments[0].Host, s.Segments[0].Gateway = "rr", rrAddr
	for i := range s.Nodes {
		s.Nodes[i].Gateway = rrAddr
	}
	rr := Router{Name: "rr", Kind: BIRD, AS: ClusterAS, RouterID: rrAddr}
	for _, nd := range s.Nodes {
		rr.Neighbors = append(rr.Neighbors, Neighbor{Name: nd.Name, Addr: nd.Addr.Addr(), AS: ClusterAS, RRClient: true, Node: true})
	}
	s.Routers = []Router{rr}
	// The reflector is not a gingham node: the nodes accept the pool
	// routes it reflects only because this BGPPeer allows them.
	rrPeer := bgpPeer("rr", "all()", rrAddr, ClusterAS)
	rrPeer.Spec.AllowPoolRoutes = true
	s.Objects = []client.Object{bgpConfig(false), rrPeer}
	return s
}

func bgpConfig(mesh bool) *v1.BGPConfiguration {
	as := int64(ClusterAS)
	return &v1.BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: v1.DefaultBGPConfigName},
		Spec: v1.BGPConfigurationSpec{NodeToNodeMeshEnabled: &mesh, ASNumber: &as}}
}

func bgpPeer(name, nodeSelector string, addr netip.Addr, as uint32) *v1.BGPPeer {
	a := int64(as)
	return &v1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.BGPPeerSpec{NodeSelector: nodeSelector, PeerIP: addr.String(), ASNumber: &a}}
}

// ifName trims a device name to the kernel's 15 characters.
func ifName(s string) string {
	if len(s) > 15 {
		return s[:15]
	}
	return s
}

// Router returns the named router.
func (s *Spec) Router(name string) (Router, bool) {
	for _, r := range s.Routers {
		if r.Name == name {
			return r, true
		}
	}
	return Router{}, false
}

// Node returns the named node.
func (s *Spec) Node(name string) (Node, bool) {
	for _, n := range s.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

// Segment returns the named segment.
func (s *Spec) Segment(name string) (Segment, bool) {
	for _, g := range s.Segments {
		if g.Name == name {
			return g, true
		}
	}
	return Segment{}, false
}
