// Package ipamplugin is the gingham-ipam CNI plugin (CNI spec 1.0/1.1:
// ADD, DEL, CHECK, STATUS, GC, VERSION): it assigns each container one IPv4
// address, returned as a /32, from gingham's IPAM on the Kubernetes API.
//
// Invariants:
//   - ADD, DEL and GC on one host run one at a time, under an flock on the
//     lock file (lock_file, default /var/run/gingham/ipam.lock); the 90
//     second budget of an operation starts once the lock is held.
//   - GC releases only this node's workload addresses of this network
//     (handle <network name>.<container ID>) whose container is not in
//     cni.dev/valid-attachments, each by handle and sequence number.
//   - STATUS fails (CNI error 50) when the kubeconfig is missing or
//     unreadable, the API server does not answer, or no pool can serve.
//   - The handle is <network name>.<container ID>: a repeated ADD returns the
//     address the container already has; DEL of an unknown container
//     succeeds.
//   - A failed ADD leaves nothing allocated by it (the allocator releases the
//     handle on failure; an address the container held before the call is
//     kept) and prints a CNI error whose message says what failed: pool
//     exhausted, API server unreachable, or which config field is wrong.
//   - CHECK without a prevResult says whether the container holds an
//     address (CNI error 3 when it holds none); gingham asks it before ADD.
package ipamplugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	cniversion "github.com/containernetworking/cni/pkg/version"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/gingham-net/gingham/api/model"
	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/internal/logging"
	"github.com/gingham-net/gingham/internal/version"
	"github.com/gingham-net/gingham/ipam"
	"github.com/gingham-net/gingham/ipam/k8sstore"
)

// Error codes beyond the CNI spec's own (100 and up are plugin-specific).
const (
	CodePoolExhausted uint = 100 // no free address in the usable pools
	CodeNoPool        uint = 101 // no pool may serve the pod (or a named pool is unusable)
)

// Defaults.
const (
	DefaultLockFile = "/var/run/gingham/ipam.lock"
	opTimeout       = 90 * time.Second
	// EnvNodename names the node when the config does not.
	EnvNodename = "GINGHAM_NODENAME"
)

// Main runs the plugin as a CNI binary.
func Main() {
	skel.PluginMainFuncs(skel.CNIFuncs{
		Add: run("ADD", cmdAdd, true), Del: run("DEL", cmdDel, true), Check: run("CHECK", cmdCheck, false),
		Status: run("STATUS", cmdStatus, false), GC: run("GC", cmdGC, true),
	}, cniversion.PluginSupports("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"), "gingham-ipam "+version.Version)
}

func badConf(format string, a ...any) *types.Error {
	return types.NewError(types.ErrInvalidNetworkConfig, "bad config: "+fmt.Sprintf(format, a...), "")
}

// env is what one command works with.
type env struct {
	args  *skel.CmdArgs
	conf  *Conf
	c     client.Client
	store *k8sstore.Store
	alloc *ipam.Allocator
	log   *zap.Logger
}

// run gives fn what a command works with: the configuration, the logger it
// asks for, the API client and, for the commands that write (locked), the
// host-wide lock. It logs the outcome.
func run(command string, fn func(*env) error, locked bool) func(*skel.CmdArgs) error {
	return func(args *skel.CmdArgs) error {
		conf, cerr := LoadConf(args.StdinData)
		if cerr != nil {
			return cerr
		}
		log, closeLog, err := conf.NewLogger()
		if err != nil {
			return badConf("%v", err)
		}
		defer closeLog()
		log = log.With(zap.String("plugin", "gingham-ipam"), zap.String(logging.KeyOp, command),
			zap.String("containerID", args.ContainerID), zap.String(logging.KeyNode, conf.Nodename))
		err = runWith(args, conf, log, fn, locked)
		if command == "STATUS" {
			err = notAvailable(err)
		}
		var te *types.Error
		switch {
		case command == "CHECK" && errors.As(err, &te) && te.Code == types.ErrUnknownContainer:
			// An answer, not a failure: gingham asks before every ADD.
			log.Info("command done: no address is allocated for the container")
			return err
		case err != nil:
			log.Error("command failed", logging.ErrorField(err))
			return err
		}
		log.Info("command done")
		return nil
	}
}

func runWith(args *skel.CmdArgs, conf *Conf, log *zap.Logger, fn func(*env) error, locked bool) error {
	e, cerr := setup(args, conf, log)
	if cerr != nil {
		return cerr
	}
	if locked {
		unlock, cerr := lock(conf.LockFile)
		if cerr != nil {
			return cerr
		}
		defer unlock()
	}
	return fn(e)
}

func setup(args *skel.CmdArgs, conf *Conf, log *zap.Logger) (*env, *types.Error) {
	var cfg *rest.Config
	var err error
	if conf.Kubeconfig != "" {
		if _, serr := os.Stat(conf.Kubeconfig); serr != nil {
			return nil, badConf("field kubernetes.kubeconfig: %v", serr)
		}
		cfg, err = clientcmd.BuildConfigFromFlags("", conf.Kubeconfig)
		if err != nil {
			return nil, badConf("field kubernetes.kubeconfig %s: %v", conf.Kubeconfig, err)
		}
	} else if cfg, err = rest.InClusterConfig(); err != nil {
		return nil, badConf("field kubernetes.kubeconfig is required outside a cluster (%v)", err)
	}
	cfg.Timeout = 30 * time.Second
	cfg.QPS, cfg.Burst = 50, 100
	c, err := k8sstore.NewClient(cfg)
	if err != nil {
		return nil, types.NewError(types.ErrTryAgainLater, "API server unreachable: "+err.Error(), "")
	}
	store := k8sstore.New(c)
	return &env{args: args, conf: conf, c: c, store: store, alloc: ipam.New(store, ipam.Options{Logger: log}), log: log}, nil
}

// notAvailable turns any STATUS failure (a missing kubeconfig included)
// into CNI error 50, "plugin not available", keeping its message.
func notAvailable(err error) error {
	var te *types.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &te) && (te.Code == types.ErrPluginNotAvailable || te.Code == types.ErrLimitedConnectivity):
		return te
	case errors.As(err, &te):
		return types.NewError(types.ErrPluginNotAvailable, te.Msg, te.Details)
	}
	return types.NewError(types.ErrPluginNotAvailable, err.Error(), "")
}

// lock takes the host-wide lock; the returned function releases it.
func lock(path string) (func(), *types.Error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, types.NewError(types.ErrIOFailure, fmt.Sprintf("create lock directory for %s: %v", path, err), "")
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, types.NewError(types.ErrIOFailure, fmt.Sprintf("open lock file %s: %v", path, err), "")
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, types.NewError(types.ErrIOFailure, fmt.Sprintf("lock %s: %v", path, err), "")
	}
	return func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
}

// cniError turns an IPAM error into the CNI error the runtime prints.
func cniError(op string, err error) *types.Error {
	var te *types.Error
	switch {
	case errors.As(err, &te):
		return te
	case errors.Is(err, ipam.ErrPoolExhausted):
		return types.NewError(CodePoolExhausted, "pool exhausted: "+err.Error(), "")
	case errors.Is(err, ipam.ErrNoPools):
		return types.NewError(CodeNoPool, "no usable IP pool: "+err.Error(), "")
	case errors.Is(err, ipam.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return types.NewError(types.ErrTryAgainLater, "API server unreachable: "+err.Error(), "")
	case errors.Is(err, ipam.ErrInvalid):
		return types.NewError(types.ErrInvalidNetworkConfig, op+": "+err.Error(), "")
	}
	return types.NewError(types.ErrInternal, op+": "+err.Error(), "")
}

// podArgs reads K8S_POD_NAMESPACE and K8S_POD_NAME from CNI_ARGS.
func podArgs(cniArgs string) (namespace, name string) {
	for kv := range strings.SplitSeq(cniArgs, ";") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "K8S_POD_NAMESPACE":
			namespace = v
		case "K8S_POD_NAME":
			name = v
		}
	}
	return namespace, name
}

// handleID is the IPAM handle of a container: <network name>.<container ID>.
func handleID(conf *Conf, containerID string) string { return conf.Name + "." + containerID }

func cmdAdd(e *env) error {
	args := e.args
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()

	ns, podName := podArgs(args.Args)
	pools, err := e.requestedPools(ctx, ns, podName)
	if err != nil {
		return cniError("read pool annotations", err)
	}
	var node corev1.Node
	var labels map[string]string
	if found, err := e.get(ctx, client.ObjectKey{Name: e.conf.Nodename}, &node); err != nil {
		return cniError("read node", err)
	} else if found {
		labels = node.Labels
	} else {
		e.log.Warn("node not found; pools with a nodeSelector other than all() will not match", zap.String(logging.KeyNode, e.conf.Nodename))
	}
	attrs := map[string]string{ipam.AttrType: ipam.TypeWorkload}
	if podName != "" {
		attrs[ipam.AttrPodName], attrs[ipam.AttrNamespace] = podName, ns
	}
	addr, reused, err := e.alloc.AssignOrReuse(ctx, ipam.AssignRequest{
		Handle: handleID(e.conf, args.ContainerID), Node: e.conf.Nodename, NodeLabels: labels, Pools: pools, Attrs: attrs,
	})
	if err != nil {
		return cniError("assign address", err)
	}
	res := &types100.Result{CNIVersion: types100.ImplementedSpecVersion, IPs: []*types100.IPConfig{{Address: hostNet(addr)}}}
	if err := types.PrintResult(res, e.conf.CNIVersion); err != nil {
		// The runtime never learns the address: give it back, unless an
		// earlier ADD of the container (which the runtime did learn) took it.
		if !reused {
			_ = e.alloc.ReleaseByHandle(context.WithoutCancel(ctx), handleID(e.conf, args.ContainerID))
		}
		return types.NewError(types.ErrIOFailure, "print result: "+err.Error(), "")
	}
	return nil
}

func hostNet(a netip.Addr) net.IPNet {
	return net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(a.BitLen(), a.BitLen())}
}

// requestedPools applies the pool annotations: the pod's, else its
// namespace's, else the config's ipv4_pools (nil: any usable pool).
func (e *env) requestedPools(ctx context.Context, ns, podName string) ([]string, error) {
	if podName != "" {
		var pod corev1.Pod
		if found, err := e.get(ctx, client.ObjectKey{Namespace: ns, Name: podName}, &pod); err != nil {
			return nil, err
		} else if s, ok := pod.Annotations[ipam.AnnotationIPv4Pools]; found && ok {
			return parsePools("pod "+ns+"/"+podName, s)
		}
		var nsObj corev1.Namespace
		if found, err := e.get(ctx, client.ObjectKey{Name: ns}, &nsObj); err != nil {
			return nil, err
		} else if s, ok := nsObj.Annotations[ipam.AnnotationIPv4Pools]; found && ok {
			return parsePools("namespace "+ns, s)
		}
	}
	return e.conf.IPAM.IPv4Pools, nil
}

func parsePools(where, s string) ([]string, error) {
	var pools []string
	if err := json.Unmarshal([]byte(s), &pools); err != nil {
		return nil, fmt.Errorf("annotation %s on %s: want a JSON list of pool names or CIDRs: %w", ipam.AnnotationIPv4Pools, where, ipam.ErrInvalid)
	}
	return pools, nil
}

func cmdDel(e *env) error {
	args := e.args
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := e.alloc.ReleaseByHandle(ctx, handleID(e.conf, args.ContainerID)); err != nil {
		return cniError("release address", err)
	}
	return nil
}

func cmdCheck(e *env) error {
	args := e.args
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	held, err := e.alloc.HandleAddrs(ctx, handleID(e.conf, args.ContainerID))
	if err != nil {
		return cniError("check address", err)
	}
	if len(held) == 0 {
		return types.NewError(types.ErrUnknownContainer, "no address is allocated for container "+args.ContainerID, "")
	}
	if err := cniversion.ParsePrevResult(&e.conf.NetConf); err != nil {
		return types.NewError(types.ErrDecodingFailure, "bad config: field prevResult: "+err.Error(), "")
	}
	if e.conf.PrevResult == nil {
		return nil
	}
	prev, err := types100.NewResultFromResult(e.conf.PrevResult)
	if err != nil {
		return types.NewError(types.ErrDecodingFailure, "bad config: field prevResult: "+err.Error(), "")
	}
	for _, a := range held {
		want := hostNet(a)
		found := false
		for _, ip := range prev.IPs {
			found = found || ip.Address.String() == want.String()
		}
		if !found {
			return types.NewError(types.ErrInternal, fmt.Sprintf("allocated address %s is missing from prevResult", want.String()), "")
		}
	}
	return nil
}

func cmdStatus(e *env) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var list v1.IPPoolList
	if err := e.store.List(ctx, &list, nil); err != nil {
		return types.NewError(types.ErrPluginNotAvailable, "API server unreachable: "+err.Error(), "")
	}
	pools, _ := model.Pools(list.Items)
	for _, p := range pools {
		if !p.Disabled && p.CIDR.Addr().Is4() && p.Allows(v1.UseWorkload) {
			return nil
		}
	}
	return types.NewError(types.ErrPluginNotAvailable, "no enabled IPv4 pool allows Workload addresses", "")
}

// get reads one object: found false when it does not exist; errors wrap
// ipam.ErrUnavailable when the API server could not be reached.
func (e *env) get(ctx context.Context, key client.ObjectKey, obj client.Object) (bool, error) {
	err := e.c.Get(ctx, key, obj)
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsNotFound(err):
		return false, nil
	}
	return false, fmt.Errorf("read %T %s: %w", obj, key, k8sstore.Classify(err))
}
