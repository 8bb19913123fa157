package attach

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/gingham-net/gingham/felix"
)

// Defaults of the network configuration.
const (
	DefaultInterfacePrefix = "cali"
	DefaultRouteProtocol   = 96
	DefaultStateDir        = "/var/lib/gingham"
	DefaultMTU             = 1500
	// GatewayIP is the pods' next hop, answered by proxy ARP on the host veth.
	GatewayIP = "169.254.1.1"
	// MTUFile under StateDir holds the pod MTU the agent computed.
	MTUFile = "mtu"
	// Pod annotations written on ADD when a kubeconfig is configured.
	AnnotationPodIP       = "gingham.dev/podIP"
	AnnotationContainerID = "gingham.dev/containerID"
)

// HostMAC is the MAC of every host-side veth.
var hostMAC = net.HardwareAddr{0xee, 0xee, 0xee, 0xee, 0xee, 0xee}

// NetConf is the plugin's network configuration:
//
//	{"cniVersion":"1.0.0","name":"k8s-pod-network","type":"gingham",
//	 "mtu":0,"interfacePrefix":"cali","routeProtocol":96,
//	 "stateDir":"/var/lib/gingham","kubeconfig":"/etc/cni/net.d/gingham-kubeconfig",
//	 "ipam":{"type":"gingham-ipam"}}
type NetConf struct {
	types.PluginConf
	MTU             int    `json:"mtu,omitempty"`             // 0: read StateDir/mtu
	InterfacePrefix string `json:"interfacePrefix,omitempty"` // host veth prefix
	RouteProtocol   int    `json:"routeProtocol,omitempty"`   // of the host /32
	StateDir        string `json:"stateDir,omitempty"`
	Kubeconfig      string `json:"kubeconfig,omitempty"` // empty: no Pod annotations
}

// parseRequest reads what every command needs: the network configuration
// and the pod's identity from CNI_ARGS.
func parseRequest(args *skel.CmdArgs) (conf *NetConf, namespace, pod string, err error) {
	if conf, err = parseConf(args.StdinData); err != nil {
		return nil, "", "", err
	}
	if namespace, pod, err = parseArgs(args.Args); err != nil {
		return nil, "", "", err
	}
	return conf, namespace, pod, nil
}

func parseConf(stdin []byte) (*NetConf, error) {
	c := &NetConf{}
	if err := json.Unmarshal(stdin, c); err != nil {
		return nil, fmt.Errorf("parse network configuration: %w", err)
	}
	if c.InterfacePrefix == "" {
		c.InterfacePrefix = DefaultInterfacePrefix
	}
	if c.RouteProtocol == 0 {
		c.RouteProtocol = DefaultRouteProtocol
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	switch {
	case len(c.InterfacePrefix) > 4:
		return nil, fmt.Errorf("network configuration: interfacePrefix %q is longer than 4 characters", c.InterfacePrefix)
	case c.RouteProtocol < 5 || c.RouteProtocol > 254:
		return nil, fmt.Errorf("network configuration: routeProtocol %d must be 5..254", c.RouteProtocol)
	case c.IPAM.Type == "":
		return nil, errors.New("network configuration: ipam.type is required")
	case c.MTU < 0:
		return nil, fmt.Errorf("network configuration: mtu %d is negative", c.MTU)
	}
	return c, nil
}

// mtu is the conf's MTU, else the agent's file, else DefaultMTU.
func (c *NetConf) mtu() int {
	if c.MTU > 0 {
		return c.MTU
	}
	b, err := os.ReadFile(filepath.Join(c.StateDir, MTUFile))
	if err != nil {
		return DefaultMTU
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 576 {
		return DefaultMTU
	}
	return n
}

// podArgs are the Kubernetes identity fields of CNI_ARGS.
type podArgs struct {
	types.CommonArgs
	K8S_POD_NAMESPACE          types.UnmarshallableString //nolint:revive // CNI_ARGS key
	K8S_POD_NAME               types.UnmarshallableString //nolint:revive // CNI_ARGS key
	K8S_POD_INFRA_CONTAINER_ID types.UnmarshallableString //nolint:revive // CNI_ARGS key
}

func parseArgs(s string) (namespace, pod string, err error) {
	a := podArgs{}
	a.IgnoreUnknown = true
	if err := types.LoadArgs(s, &a); err != nil {
		return "", "", fmt.Errorf("parse CNI_ARGS: %w", err)
	}
	return string(a.K8S_POD_NAMESPACE), string(a.K8S_POD_NAME), nil
}

// hostVeth names the host side; without pod identity (not Kubernetes) the
// container ID stands in for it.
func hostVeth(c *NetConf, namespace, pod, containerID string) string {
	if namespace == "" || pod == "" {
		return felix.HostVethName(c.InterfacePrefix, "cni", containerID)
	}
	return felix.HostVethName(c.InterfacePrefix, namespace, pod)
}
