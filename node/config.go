package node

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/gingham-net/gingham/internal/logging"
	"github.com/gingham-net/gingham/node/autodetect"
)

// Defaults of settings whose empty value means something else.
const (
	// DefaultCNIKubeconfig is the CNI plugin's kubeconfig install-cni writes.
	DefaultCNIKubeconfig = "/etc/cni/net.d/gingham-kubeconfig"
	// DefaultMetricsAddr is Felix's metrics port on the node's address.
	DefaultMetricsAddr = ":9091"
)

// Config is gingham-node's whole configuration, read once at start from
// flags and GINGHAM_* environment variables (a flag wins over its variable).
// An empty variable is the same as an unset one, except for
// GINGHAM_METRICS_ADDR and GINGHAM_CNI_KUBECONFIG, where "" turns the
// feature off.
type Config struct {
	NodeName        string            // GINGHAM_NODENAME: this node's Kubernetes Node name
	Kubeconfig      string            // GINGHAM_KUBECONFIG: empty means in-cluster
	Namespace       string            // GINGHAM_NAMESPACE: the agent's namespace (BGP password Secrets, GC Lease)
	LogLevel        zapcore.Level     // GINGHAM_LOG_LEVEL
	LogJSON         bool              // GINGHAM_LOG_JSON
	NodeIP          netip.Prefix      // GINGHAM_IP: this node's BGP address with prefix length (wins over autodetection)
	IPAutodetection autodetect.Method // GINGHAM_IP_AUTODETECTION_METHOD: how to find NodeIP when GINGHAM_IP is empty
	// ASNumber is written to the Node's AS annotation when SetAS (0
	// removes it: the cluster AS); unset, the annotation is left as an
	// administrator set it.
	ASNumber         uint32        // GINGHAM_AS
	SetAS            bool          // GINGHAM_AS was given
	RRClusterID      string        // GINGHAM_RR_CLUSTER_ID: written to the Node when set; empty leaves the annotation alone
	InterfacePrefix  string        // GINGHAM_INTERFACE_PREFIX: host-side veth prefix
	RouteProtocol    int           // GINGHAM_ROUTE_PROTOCOL: kernel protocol number of our routes
	ResyncInterval   time.Duration // GINGHAM_RESYNC_INTERVAL: full route resync period
	MTU              int           // GINGHAM_MTU: 0 means detect from the uplink
	BGPSocket        string        // GINGHAM_BGP_SOCKET: GoBGP gRPC unix socket
	StatusSocket     string        // GINGHAM_STATUS_SOCKET: this node's status for ginghamctl node status
	HealthAddr       string        // GINGHAM_HEALTH_ADDR: /livez, /readyz
	MetricsAddr      string        // GINGHAM_METRICS_ADDR: /metrics; no host means the node's address, "" disables
	CNIKubeconfig    string        // GINGHAM_CNI_KUBECONFIG: the CNI plugin's kubeconfig, kept on the current token in-cluster; "" disables
	StateDir         string        // GINGHAM_STATE_DIR: where the CNI plugin reads the MTU
	RestartTime      time.Duration // GINGHAM_GRACEFUL_RESTART_TIME
	DefaultPoolCIDR  string        // GINGHAM_IPV4POOL_CIDR: create this pool if none exists
	DefaultPoolIPIP  string        // GINGHAM_IPV4POOL_IPIP: Never|Always|CrossSubnet
	DefaultPoolNAT   bool          // GINGHAM_IPV4POOL_NAT_OUTGOING
	DefaultBlockSize int           // GINGHAM_IPV4POOL_BLOCK_SIZE
	IPAMGCGrace      time.Duration // GINGHAM_IPAM_GC_GRACE: how long an allocation must look leaked before release
}

// LoadConfig parses args (without the program name) over the environment
// read through lookupEnv (os.LookupEnv), and validates the result. Errors
// name the setting.
func LoadConfig(args []string, lookupEnv func(string) (string, bool)) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("gingham-node", flag.ContinueOnError)
	// env: unset or empty gives the default.
	env := func(key, def string) string {
		if v, _ := lookupEnv(key); v != "" {
			return v
		}
		return def
	}
	// envOrEmpty: only unset gives the default; "" is a value (off).
	envOrEmpty := func(key, def string) string {
		if v, ok := lookupEnv(key); ok {
			return v
		}
		return def
	}
	host, _ := os.Hostname()
	nodeName := fs.String("node-name", env("GINGHAM_NODENAME", host), "Kubernetes Node name of this node (GINGHAM_NODENAME)")
	fs.StringVar(&c.Kubeconfig, "kubeconfig", env("GINGHAM_KUBECONFIG", env("KUBECONFIG", "")), "kubeconfig path; empty for in-cluster (GINGHAM_KUBECONFIG)")
	fs.StringVar(&c.Namespace, "namespace", env("GINGHAM_NAMESPACE", "gingham-system"), "the agent's namespace: BGP password Secrets and the IPAM GC Lease live here (GINGHAM_NAMESPACE)")
	level := fs.String("log-level", env("GINGHAM_LOG_LEVEL", "info"), "debug, info, warning or error (GINGHAM_LOG_LEVEL)")
	logJSON := fs.String("log-json", env("GINGHAM_LOG_JSON", "false"), "log as JSON (GINGHAM_LOG_JSON)")
	ip := fs.String("ip", env("GINGHAM_IP", ""), "node address with prefix length, e.g. 10.0.0.5/24; empty: autodetect (GINGHAM_IP)")
	method := fs.String("ip-autodetection-method", env("GINGHAM_IP_AUTODETECTION_METHOD", "first-found"),
		"how to find the node address without --ip: first-found, interface=<regex,...>, skip-interface=<regex,...>, cidr=<cidr,...>, can-reach=<ip or name>, kubernetes-internal-ip (GINGHAM_IP_AUTODETECTION_METHOD)")
	as := fs.String("as", env("GINGHAM_AS", ""), "AS number written to this Node; empty or 0 leaves the Node's annotation as it is (GINGHAM_AS)")
	fs.StringVar(&c.RRClusterID, "rr-cluster-id", env("GINGHAM_RR_CLUSTER_ID", ""), "route reflector cluster ID written to this Node; empty leaves the Node's annotation as it is (GINGHAM_RR_CLUSTER_ID)")
	fs.StringVar(&c.InterfacePrefix, "interface-prefix", env("GINGHAM_INTERFACE_PREFIX", "cali"), "host-side veth name prefix (GINGHAM_INTERFACE_PREFIX)")
	proto := fs.String("route-protocol", env("GINGHAM_ROUTE_PROTOCOL", "96"), "kernel route protocol number of gingham's routes (GINGHAM_ROUTE_PROTOCOL)")
	resync := fs.String("resync-interval", env("GINGHAM_RESYNC_INTERVAL", "90s"), "full route resync period (GINGHAM_RESYNC_INTERVAL)")
	mtu := fs.String("mtu", env("GINGHAM_MTU", "0"), "host MTU override; 0 detects it (GINGHAM_MTU)")
	fs.StringVar(&c.BGPSocket, "bgp-socket", env("GINGHAM_BGP_SOCKET", "/var/run/gingham/bgp.sock"), "GoBGP gRPC unix socket (GINGHAM_BGP_SOCKET)")
	fs.StringVar(&c.StatusSocket, "status-socket", env("GINGHAM_STATUS_SOCKET", "/var/run/gingham/status.sock"), "unix socket serving this node's status to ginghamctl (GINGHAM_STATUS_SOCKET)")
	fs.StringVar(&c.HealthAddr, "health-addr", env("GINGHAM_HEALTH_ADDR", "127.0.0.1:9099"), "address of /livez and /readyz (GINGHAM_HEALTH_ADDR)")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", envOrEmpty("GINGHAM_METRICS_ADDR", DefaultMetricsAddr),
		"address of /metrics; without a host, the node's address; empty disables (GINGHAM_METRICS_ADDR)")
	fs.StringVar(&c.CNIKubeconfig, "cni-kubeconfig", envOrEmpty("GINGHAM_CNI_KUBECONFIG", DefaultCNIKubeconfig),
		"the CNI plugin's kubeconfig, whose token the agent keeps current when running in-cluster; empty disables (GINGHAM_CNI_KUBECONFIG)")
	fs.StringVar(&c.StateDir, "state-dir", env("GINGHAM_STATE_DIR", "/var/lib/gingham"), "state directory shared with the CNI plugin (GINGHAM_STATE_DIR)")
	restart := fs.String("graceful-restart-time", env("GINGHAM_GRACEFUL_RESTART_TIME", "120s"), "BGP graceful restart time (GINGHAM_GRACEFUL_RESTART_TIME)")
	fs.StringVar(&c.DefaultPoolCIDR, "ipv4pool-cidr", env("GINGHAM_IPV4POOL_CIDR", ""), "create this default pool when no pool exists (GINGHAM_IPV4POOL_CIDR)")
	fs.StringVar(&c.DefaultPoolIPIP, "ipv4pool-ipip", env("GINGHAM_IPV4POOL_IPIP", "Never"), "ipipMode of the default pool (GINGHAM_IPV4POOL_IPIP)")
	nat := fs.String("ipv4pool-nat-outgoing", env("GINGHAM_IPV4POOL_NAT_OUTGOING", "true"), "natOutgoing of the default pool (GINGHAM_IPV4POOL_NAT_OUTGOING)")
	bs := fs.String("ipv4pool-block-size", env("GINGHAM_IPV4POOL_BLOCK_SIZE", "26"), "blockSize of the default pool (GINGHAM_IPV4POOL_BLOCK_SIZE)")
	gcGrace := fs.String("ipam-gc-grace", env("GINGHAM_IPAM_GC_GRACE", "15m"), "how long an IPAM allocation must look leaked before the GC releases it (GINGHAM_IPAM_GC_GRACE)")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}

	var errs []error
	bad := func(setting, flagName, format string, a ...any) {
		errs = append(errs, fmt.Errorf("setting %s (--%s): %s", setting, flagName, fmt.Sprintf(format, a...)))
	}
	c.NodeName = strings.TrimSpace(*nodeName)
	if c.NodeName == "" {
		bad("GINGHAM_NODENAME", "node-name", "must not be empty")
	}
	var err error
	if c.LogLevel, err = logging.ParseLevel(*level); err != nil {
		bad("GINGHAM_LOG_LEVEL", "log-level", "%v", err)
	}
	if c.LogJSON, err = strconv.ParseBool(*logJSON); err != nil {
		bad("GINGHAM_LOG_JSON", "log-json", "%q is not a boolean", *logJSON)
	}
	if *ip != "" {
		if c.NodeIP, err = netip.ParsePrefix(*ip); err != nil || !c.NodeIP.Addr().Is4() {
			bad("GINGHAM_IP", "ip", "%q is not an IPv4 address with prefix length (e.g. 10.0.0.5/24)", *ip)
		}
	}
	if c.IPAutodetection, err = autodetect.Parse(*method); err != nil {
		bad("GINGHAM_IP_AUTODETECTION_METHOD", "ip-autodetection-method", "%v", err)
	}
	if *as != "" {
		if n, err := strconv.ParseUint(*as, 10, 32); err != nil {
			bad("GINGHAM_AS", "as", "%q is not an AS number (0..4294967295, or empty)", *as)
		} else {
			c.ASNumber = uint32(n)
		}
	}
	if c.RRClusterID != "" {
		if a, err := netip.ParseAddr(c.RRClusterID); err != nil || !a.Is4() {
			bad("GINGHAM_RR_CLUSTER_ID", "rr-cluster-id", "%q is not an IPv4-formatted cluster ID", c.RRClusterID)
		}
	}
	if c.InterfacePrefix == "" || len(c.InterfacePrefix) > 4 {
		bad("GINGHAM_INTERFACE_PREFIX", "interface-prefix", "%q must be 1 to 4 characters (the name is prefix + 11 hex)", c.InterfacePrefix)
	}
	if c.RouteProtocol, err = strconv.Atoi(*proto); err != nil || c.RouteProtocol < 5 || c.RouteProtocol > 254 {
		bad("GINGHAM_ROUTE_PROTOCOL", "route-protocol", "%q must be a number from 5 to 254 (0-4 belong to the kernel)", *proto)
	}
	if c.ResyncInterval, err = time.ParseDuration(*resync); err != nil || c.ResyncInterval < time.Second {
		bad("GINGHAM_RESYNC_INTERVAL", "resync-interval", "%q must be a duration of at least 1s", *resync)
	}
	if c.MTU, err = strconv.Atoi(*mtu); err != nil || (c.MTU != 0 && (c.MTU < 576 || c.MTU > 65535)) {
		bad("GINGHAM_MTU", "mtu", "%q must be 0 (detect) or 576..65535", *mtu)
	}
	if c.MetricsAddr != "" {
		if _, port, err := net.SplitHostPort(c.MetricsAddr); err != nil || port == "" {
			bad("GINGHAM_METRICS_ADDR", "metrics-addr", "%q is not [host]:port (empty disables)", c.MetricsAddr)
		}
	}
	if c.BGPSocket == "" {
		bad("GINGHAM_BGP_SOCKET", "bgp-socket", "must not be empty")
	}
	if c.RestartTime, err = time.ParseDuration(*restart); err != nil || c.RestartTime < time.Second || c.RestartTime > 4095*time.Second {
		bad("GINGHAM_GRACEFUL_RESTART_TIME", "graceful-restart-time", "%q must be a duration from 1s to 4095s", *restart)
	}
	if c.DefaultPoolCIDR != "" {
		if p, err := netip.ParsePrefix(c.DefaultPoolCIDR); err != nil || p.Masked() != p {
			bad("GINGHAM_IPV4POOL_CIDR", "ipv4pool-cidr", "%q is not a strictly masked CIDR", c.DefaultPoolCIDR)
		}
	}
	if c.DefaultPoolIPIP, err = ParseEncapMode(c.DefaultPoolIPIP); err != nil {
		bad("GINGHAM_IPV4POOL_IPIP", "ipv4pool-ipip", "%v", err)
	}
	if c.DefaultPoolNAT, err = strconv.ParseBool(*nat); err != nil {
		bad("GINGHAM_IPV4POOL_NAT_OUTGOING", "ipv4pool-nat-outgoing", "%q is not a boolean", *nat)
	}
	if c.DefaultBlockSize, err = strconv.Atoi(*bs); err != nil || c.DefaultBlockSize < 20 || c.DefaultBlockSize > 32 {
		bad("GINGHAM_IPV4POOL_BLOCK_SIZE", "ipv4pool-block-size", "%q must be 20..32", *bs)
	}
	if c.IPAMGCGrace, err = time.ParseDuration(*gcGrace); err != nil || c.IPAMGCGrace < time.Second {
		bad("GINGHAM_IPAM_GC_GRACE", "ipam-gc-grace", "%q must be a duration of at least 1s", *gcGrace)
	}
	if len(errs) > 0 {
		return Config{}, fmt.Errorf("invalid configuration: %w", errors.Join(errs...))
	}
	return c, nil
}

// ParseEncapMode accepts Calico's spellings of an encapsulation mode (as its
// CALICO_IPV4POOL_IPIP does: off|never, always, crosssubnet|cross-subnet,
// any case) and returns the API's spelling.
func ParseEncapMode(s string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "off", "never":
		return "Never", nil
	case "always":
		return "Always", nil
	case "crosssubnet", "cross-subnet":
		return "CrossSubnet", nil
	}
	return "", fmt.Errorf("%q is not an encapsulation mode (Never, Always, CrossSubnet)", s)
}
