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

	"github.com/gingham-net/gingham/cni/netconf"
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

// NetConf is the plugin's network configuration, in Calico's spellings
// where Calico has the setting (deploy/cni-config.yaml ships it):
//
//	{"cniVersion":"1.1.0","name":"k8s-pod-network","type":"gingham",
//	 "log_level":"info","log_file_path":"/var/log/gingham/cni/cni.log",
//	 "nodename":"node-1","mtu":0,"state_dir":"/var/lib/gingham",
//	 "interface_prefix":"cali","route_protocol":96,
//	 "kubernetes":{"kubeconfig":"/etc/cni/net.d/gingham-kubeconfig"},
//	 "ipam":{"type":"gingham-ipam"}}
//
// Any other key is refused (see package netconf); the ipam section is the
// IPAM plugin's to check.
type NetConf struct {
	types.PluginConf
	netconf.Common
	MTU             int    `json:"mtu,omitempty"`              // 0: read StateDir/mtu
	StateDir        string `json:"state_dir,omitempty"`        // shared with the agent (GINGHAM_STATE_DIR)
	InterfacePrefix string `json:"interface_prefix,omitempty"` // host veth prefix (GINGHAM_INTERFACE_PREFIX)
	RouteProtocol   int    `json:"route_protocol,omitempty"`   // of the host /32 (GINGHAM_ROUTE_PROTOCOL)
	// LegacyStateDir is gingham's earlier spelling of state_dir.
	LegacyStateDir string `json:"stateDir,omitempty"`

	// Kubeconfig is the resolved kubernetes.kubeconfig (empty: no Pod
	// annotations).
	Kubeconfig string `json:"-"`
}

// parseRequest reads what every command needs: the network configuration
// and the pod's identity from CNI_ARGS.
func parseRequest(args *skel.CmdArgs) (conf *NetConf, namespace, pod string, err error) {
	if conf, err = ParseConf(args.StdinData); err != nil {
		return nil, "", "", err
	}
	if namespace, pod, err = parseArgs(args.Args); err != nil {
		return nil, "", "", err
	}
	return conf, namespace, pod, nil
}

// ParseConf decodes and validates the plugin's network configuration and
// fills in its defaults; unknown keys are refused with their names.
func ParseConf(stdin []byte) (*NetConf, error) {
	c := &NetConf{}
	if err := json.Unmarshal(stdin, c); err != nil {
		return nil, fmt.Errorf("parse network configuration: %w", err)
	}
	if err := netconf.CheckPlugin(stdin, c); err != nil {
		return nil, err
	}
	if err := c.Common.Check(stdin); err != nil {
		return nil, err
	}
	var err error
	if c.Kubeconfig, err = c.KubeconfigPath(); err != nil {
		return nil, err
	}
	switch {
	case c.StateDir != "" && c.LegacyStateDir != "" && c.StateDir != c.LegacyStateDir:
		return nil, fmt.Errorf("network configuration: state_dir %q and stateDir %q disagree (set only state_dir)", c.StateDir, c.LegacyStateDir)
	case c.StateDir == "":
		c.StateDir = c.LegacyStateDir
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
		return nil, fmt.Errorf("network configuration: interface_prefix %q is longer than 4 characters", c.InterfacePrefix)
	case c.RouteProtocol < 5 || c.RouteProtocol > 254:
		return nil, fmt.Errorf("network configuration: route_protocol %d must be 5..254", c.RouteProtocol)
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
