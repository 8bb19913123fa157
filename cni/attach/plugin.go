// Package attach is the gingham CNI plugin (CNI spec 1.0: ADD, DEL, CHECK,
// STATUS, VERSION). It attaches a pod the Calico L3 way: a veth pair whose
// host end (cali + 11 hex of sha1("<namespace>.<pod>"), MAC
// ee:ee:ee:ee:ee:ee, proxy ARP) routes the pod's /32, while the pod's eth0
// holds the /32 and reaches everything through 169.254.1.1.
//
// Invariants:
//   - The address comes from the chained IPAM plugin (conf "ipam.type",
//     found in CNI_PATH); on any failure after IPAM ADD the address is
//     released again (named result + deferred cleanup).
//   - The host /32 carries gingham's route protocol, so the dataplane
//     (felix) adopts it instead of deleting and re-adding it.
//   - DEL is idempotent: it releases the address and removes the veth, and
//     a missing namespace, interface or allocation is not an error.
//   - The host-side name is a pure function of namespace and pod name and
//     must agree with the agent's (same prefix, same hash).
//   - The plugin writes nothing but the veth pair, the pod's address and
//     routes, the host route, neighbour entry and per-veth sysctls, and (when
//     a kubeconfig is configured) two annotations on the Pod.
package attach

import (
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"
)

// Main runs the plugin as a CNI binary.
func Main() {
	skel.PluginMainFuncs(skel.CNIFuncs{Add: cmdAdd, Del: cmdDel, Check: cmdCheck, Status: cmdStatus},
		version.PluginSupports("0.4.0", "1.0.0", "1.1.0"), "gingham: Calico-style L3 pod attachment")
}
