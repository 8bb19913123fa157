// Package attach is the gingham CNI plugin (CNI spec 1.1: ADD, DEL, CHECK,
// STATUS, GC, VERSION). It attaches a pod the Calico L3 way: a veth pair
// whose host end (cali + 11 hex of sha1("<namespace>.<pod>"), MAC
// ee:ee:ee:ee:ee:ee, proxy ARP) routes the pod's /32, while the pod's eth0
// holds the /32 and reaches everything through 169.254.1.1.
//
// Invariants:
//   - The address comes from the chained IPAM plugin (conf "ipam.type",
//     found in CNI_PATH). ADD opens the pod's namespace before asking for
//     it, so an ADD into a missing namespace takes nothing. A failure after
//     IPAM ADD gives back only what this call took (named result + deferred
//     cleanup): the address only if IPAM's CHECK, asked before ADD, said the
//     container held none; the veth pair only if this call created it. A
//     repeated ADD that fails leaves the running pod as it was.
//   - A repeated ADD of the same attachment (the host veth's alias names
//     network, container and interface, and its peer is the interface in
//     the pod's namespace, holding the address) re-uses the pair and
//     re-applies the rest: the pod keeps its MAC, so the neighbour entry the
//     agent learnt stays right. Anything else under the host-side name is
//     replaced by a new pair.
//   - The host /32 carries gingham's route protocol, so the dataplane
//     (felix) adopts it instead of deleting and re-adding it.
//   - DEL is idempotent: it releases the address and removes the veth, and
//     a missing namespace, interface or allocation is not an error.
//   - The host-side name is a pure function of namespace and pod name and
//     must agree with the agent's (same prefix, same hash).
//   - The host veth's alias names its attachment (network, container ID,
//     interface); GC removes only veths whose alias says they are this
//     network's and whose attachment is not in the runtime's valid list. A
//     veth without such an alias is never touched.
//   - The plugin writes nothing but the veth pair, the pod's address and
//     routes, the host route, neighbour entry and per-veth sysctls, and (when
//     a kubeconfig is configured) two annotations on the Pod.
//   - Unknown configuration keys are refused (package netconf); logs go
//     where log_file_path and log_level say, and nowhere else.
package attach

import (
	"errors"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
	"go.uber.org/zap"

	"github.com/gingham-net/gingham/internal/logging"
)

// Main runs the plugin as a CNI binary.
func Main() {
	skel.PluginMainFuncs(skel.CNIFuncs{
		Add: run("ADD", cmdAdd), Del: run("DEL", cmdDel), Check: run("CHECK", cmdCheck),
		Status: run("STATUS", cmdStatus), GC: run("GC", cmdGC),
	}, version.PluginSupports("0.4.0", "1.0.0", "1.1.0"), "gingham: Calico-style L3 pod attachment")
}

// request is one command's parsed input and its logger.
type request struct {
	args           *skel.CmdArgs
	conf           *NetConf
	namespace, pod string
	log            *zap.Logger
}

// run parses the request, builds the logger its configuration asks for,
// runs fn and logs the outcome. A configuration error is CNI error 7.
func run(command string, fn func(*request) error) func(*skel.CmdArgs) error {
	return func(args *skel.CmdArgs) error {
		conf, namespace, pod, err := parseRequest(args)
		if err != nil {
			return types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
		}
		log, closeLog, err := conf.NewLogger()
		if err != nil {
			return types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
		}
		defer closeLog()
		log = log.With(zap.String("plugin", "gingham"), zap.String(logging.KeyOp, command),
			zap.String("containerID", args.ContainerID), zap.String(logging.KeyNode, conf.Nodename))
		if pod != "" {
			log = log.With(zap.String("pod", namespace+"/"+pod))
		}
		log.Debug("command started", zap.String("netns", args.Netns), zap.String("ifname", args.IfName))
		if err := fn(&request{args: args, conf: conf, namespace: namespace, pod: pod, log: log}); err != nil {
			log.Error("command failed", logging.ErrorField(err))
			var te *types.Error
			if errors.As(err, &te) {
				return te
			}
			return err
		}
		log.Info("command done")
		return nil
	}
}
