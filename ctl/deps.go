package ctl

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/homedir"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/gingham-net/gingham/api/v1"
)

// IOStreams are where a command reads and writes.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// ConnFlags are the global flags that say which cluster to reach.
type ConnFlags struct {
	Kubeconfig string // --kubeconfig; empty: $KUBECONFIG, ~/.kube/config, then in-cluster
	Context    string // --context; empty: the kubeconfig's current context
}

// ClientFactory connects to the cluster named by the global flags.
type ClientFactory interface {
	Client(ConnFlags) (client.Client, error)
}

// NodeStatusSource returns the status of the agent on one node.
// ErrNoStatus (wrapped) means the source has nothing for that node.
type NodeStatusSource interface {
	NodeStatus(ctx context.Context, node string) (*v1.GinghamNodeStatus, error)
}

// IPAMOps are the IPAM writes ginghamctl delegates to the ipam package
// (it never edits blocks itself).
type IPAMOps interface {
	// ReleaseIP frees one allocated address.
	ReleaseIP(ctx context.Context, ip netip.Addr) error
	// ReleasePoolAffinities releases every node's claim on the blocks of a
	// pool; addresses in use stay allocated.
	ReleasePoolAffinities(ctx context.Context, pool netip.Prefix) error
}

// IPAMChecker finds leaks and inconsistencies in the IPAM objects.
type IPAMChecker interface {
	Check(ctx context.Context) (*CheckReport, error)
}

// Deps are everything the commands need from outside.
type Deps struct {
	Streams IOStreams
	Clients ClientFactory
	// Hostname is this machine's name, the default node of `node status`.
	Hostname func() (string, error)
	// LocalStatus, when set, is asked first by `node status` (the local
	// agent's socket); nil reads the GinghamNodeStatus resource only.
	LocalStatus func(node string) NodeStatusSource
	// IPAM builds the IPAM operations on a client; nil means this build has
	// none, and `ipam release` and pool affinity release say so.
	IPAM func(client.Client) IPAMOps
	// Checker builds the IPAM checker; nil uses the built-in read-only one.
	Checker func(client.Client) IPAMChecker
	// PoolDrainDelay is how long pool deletion waits between disabling a
	// pool and releasing its affinities, so in-flight allocations see the
	// pool disabled (Calico waits 500ms).
	PoolDrainDelay time.Duration
}

// KubeClients reaches the cluster the way kubectl does: --kubeconfig, else
// $KUBECONFIG, else ~/.kube/config, else the in-cluster service account.
type KubeClients struct{}

var _ ClientFactory = KubeClients{}

// Client returns a client for gingham.dev/v1 and core objects.
func (KubeClients) Client(f ConnFlags) (client.Client, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.Kubeconfig
	if os.Getenv(clientcmd.RecommendedConfigPathEnvVar) == "" {
		// Resolve ~ now, not when client-go was initialised.
		rules.Precedence = []string{filepath.Join(homedir.HomeDir(), clientcmd.RecommendedHomeDir, clientcmd.RecommendedFileName)}
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: f.Context}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load cluster configuration (set --kubeconfig or KUBECONFIG): %w", err)
	}
	cfg.UserAgent = "ginghamctl"
	s, err := Scheme()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", cfg.Host, err)
	}
	return c, nil
}

// Scheme knows the gingham.dev/v1 and core types ginghamctl reads.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := v1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("register gingham types: %w", err)
	}
	if err := corev1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("register core types: %w", err)
	}
	return s, nil
}
