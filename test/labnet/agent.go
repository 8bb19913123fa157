package labnet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/internal/testenv"
)

// BinDir is the repository's bin/ (make build).
func BinDir() string { return filepath.Join(testenv.Root(), "bin") }

// NodeDir is a node's private directory: BGP socket, state dir, CNI data.
func (l *Lab) NodeDir(node string) string { return filepath.Join(l.Spec.RunDir, "nodes", node) }

// BGPSocket is the GoBGP gRPC socket of a node's agent (gobgp --target).
func (l *Lab) BGPSocket(node string) string { return filepath.Join(l.NodeDir(node), "bgp.sock") }

// StatusSocket is where node's agent serves its status to ginghamctl.
func (l *Lab) StatusSocket(node string) string { return filepath.Join(l.NodeDir(node), "status.sock") }

// StateDir is the state directory a node's agent shares with its CNI
// plugin (GINGHAM_STATE_DIR).
func (l *Lab) StateDir(node string) string { return filepath.Join(l.NodeDir(node), "state") }

// AgentEnv is the environment gingham-node gets on node n, the equivalent
// of the DaemonSet's: identity from the spec, the API through the proxy,
// and per-node paths (namespaces share the filesystem).
func (l *Lab) AgentEnv(n Node) []string {
	env := []string{
		"GINGHAM_NODENAME=" + n.Name,
		"GINGHAM_KUBECONFIG=" + l.NodeKubeconfig(),
		"GINGHAM_IP=" + n.Addr.String(),
		"GINGHAM_BGP_SOCKET=" + l.BGPSocket(n.Name),
		"GINGHAM_STATUS_SOCKET=" + l.StatusSocket(n.Name),
		"GINGHAM_STATE_DIR=" + l.StateDir(n.Name),
		"GINGHAM_HEALTH_ADDR=127.0.0.1:9099", // each namespace has its own loopback
		"GINGHAM_LOG_LEVEL=debug",
	}
	if n.AS != 0 {
		env = append(env, "GINGHAM_AS="+strconv.FormatUint(uint64(n.AS), 10))
	}
	if n.RRClusterID != "" {
		env = append(env, "GINGHAM_RR_CLUSTER_ID="+n.RRClusterID)
	}
	if l.Spec.PoolCIDR.IsValid() {
		env = append(env, "GINGHAM_IPV4POOL_CIDR="+l.Spec.PoolCIDR.String())
	}
	return env
}

// StartAgent starts bin/gingham-node (or binary, when not empty) inside a
// node's namespace with AgentEnv plus extra (later entries win). Its log
// is NodeDir/gingham-node.log.
func (l *Lab) StartAgent(node, binary string, extra ...string) (*Daemon, error) {
	n, ok := l.Spec.Node(node)
	if !ok {
		return nil, fmt.Errorf("start agent: unknown node %s", node)
	}
	if binary == "" {
		binary = filepath.Join(BinDir(), "gingham-node")
	}
	if err := os.MkdirAll(l.StateDir(node), 0o755); err != nil {
		return nil, fmt.Errorf("start agent on %s: %w", node, err)
	}
	d, err := StartDaemon(node+"/gingham-node", l.NS(node), filepath.Join(l.NodeDir(node), "gingham-node.log"),
		append(l.AgentEnv(n), extra...), binary)
	if err != nil {
		return nil, err
	}
	l.addDaemon(d)
	return d, nil
}

// StartAgents starts the agent on every node.
func (l *Lab) StartAgents(binary string, extra ...string) error {
	for _, n := range l.Spec.Nodes {
		if _, err := l.StartAgent(n.Name, binary, extra...); err != nil {
			return err
		}
	}
	return nil
}

// RegisterNodes creates the Kubernetes Node of every lab node, as the
// kubelet would: labels from the spec, InternalIP from its address.
func (l *Lab) RegisterNodes(ctx context.Context, c client.Client) error {
	for _, n := range l.Spec.Nodes {
		obj := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: map[string]string{"kubernetes.io/hostname": n.Name}}}
		for k, v := range n.Labels {
			obj.Labels[k] = v
		}
		if err := c.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("register node %s: %w", n.Name, err)
		}
		obj.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: n.Addr.Addr().String()}, {Type: corev1.NodeHostName, Address: n.Name}}
		if err := c.Status().Update(ctx, obj); err != nil {
			return fmt.Errorf("register node %s: status: %w", n.Name, err)
		}
	}
	return nil
}

// AgentNamespace is where gingham-node runs (deploy/: gingham-system).
const AgentNamespace = "gingham-system"

// DefaultIPPool is the lab's default pool object (name as Calico's).
func (l *Lab) DefaultIPPool() *v1.IPPool {
	bs := v1.DefaultBlockSizeIPv4
	return &v1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "default-ipv4-ippool"},
		Spec: v1.IPPoolSpec{CIDR: l.Spec.PoolCIDR.String(), BlockSize: &bs, IPIPMode: v1.EncapNever, NATOutgoing: true}}
}

// ApplyObjects creates the default IPPool and the topology's objects
// (BGPConfiguration, BGPPeers); existing ones are left as they are.
func (l *Lab) ApplyObjects(ctx context.Context, c client.Client) error {
	// The agents' namespace (the IPAM GC Lease lives there), as deploy/ has it.
	objs := append([]client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: AgentNamespace}}}, l.Spec.Objects...)
	if l.Spec.PoolCIDR.IsValid() {
		objs = append(objs, l.DefaultIPPool())
	}
	for _, o := range objs {
		if err := c.Create(ctx, o.DeepCopyObject().(client.Object)); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("apply %T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}
