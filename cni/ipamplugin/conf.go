package ipamplugin

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/gingham-net/gingham/cni/netconf"
)

// Conf is the network configuration the plugin reads: the settings shared
// with the gingham plugin at the top level (nodename, log_level,
// log_file_path, kubernetes.kubeconfig, lock_file; see netconf.Common) and
// its own section "ipam". gingham-ipam is usually a delegate: the top level
// then belongs to the main plugin, which checks it, and only the ipam
// section is checked here. Run as the main plugin (no ipam section), the
// top level is checked here.
type Conf struct {
	types.NetConf
	netconf.Common
	// IPAM is the plugin's own section (it shadows NetConf.IPAM).
	IPAM Section `json:"ipam"`

	// Kubeconfig is the resolved kubeconfig path (empty: in-cluster).
	Kubeconfig string `json:"-"`
}

// Section is the "ipam" section. Settings here win over the top level's.
type Section struct {
	Type string `json:"type,omitempty"`
	// IPv4Pools are the pools (names or CIDRs) addresses may come from
	// when neither the pod nor its namespace names any (Calico's key).
	IPv4Pools []string `json:"ipv4_pools,omitempty"`
	// AssignIPv4 and AssignIPv6 are Calico's family switches ("true" or
	// "false"); gingham-ipam assigns IPv4 only, so only assign_ipv4 "true"
	// and assign_ipv6 "false" are accepted.
	AssignIPv4 *Flag `json:"assign_ipv4,omitempty"`
	AssignIPv6 *Flag `json:"assign_ipv6,omitempty"`
	// Nodename, Kubeconfig and LockFile override the top level's.
	Nodename   string `json:"nodename,omitempty"`
	Kubeconfig string `json:"kubeconfig,omitempty"`
	LockFile   string `json:"lock_file,omitempty"`
}

// Flag is a boolean written as Calico writes it ("true"/"false") or as a
// JSON boolean.
type Flag bool

// UnmarshalJSON accepts "true", "false", true and false.
func (f *Flag) UnmarshalJSON(b []byte) error {
	s := string(b)
	if u, err := strconv.Unquote(s); err == nil {
		s = u
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want \"true\" or \"false\", got %s", b)
	}
	*f = Flag(v)
	return nil
}

// LoadConf parses, checks and completes the configuration; errors are CNI
// errors whose message names the offending key.
func LoadConf(stdin []byte) (*Conf, *types.Error) {
	var c Conf
	if err := json.Unmarshal(stdin, &c); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "bad config: not valid JSON: "+err.Error(), "")
	}
	if err := netconf.CheckSection(stdin, "ipam", Section{}); err != nil {
		return nil, badConf("%v", err)
	}
	if !netconf.HasKey(stdin, "ipam") {
		if err := netconf.CheckPlugin(stdin, &c); err != nil {
			return nil, badConf("%v", err)
		}
	}
	if err := c.Common.Check(stdin); err != nil {
		return nil, badConf("%v", err)
	}
	s := c.IPAM
	switch {
	case s.AssignIPv4 != nil && !bool(*s.AssignIPv4):
		return nil, badConf("field ipam.assign_ipv4 \"false\": gingham-ipam assigns IPv4 addresses only")
	case s.AssignIPv6 != nil && bool(*s.AssignIPv6):
		return nil, badConf("field ipam.assign_ipv6 \"true\": gingham-ipam does not assign IPv6 addresses")
	}
	c.Kubeconfig, _ = c.KubeconfigPath() // checked by Common.Check
	if s.Kubeconfig != "" {
		c.Kubeconfig = s.Kubeconfig
	}
	if s.Nodename != "" {
		c.Nodename = s.Nodename
	}
	if s.LockFile != "" {
		c.LockFile = s.LockFile
	}
	if c.Name == "" {
		return nil, badConf("field name (the network name) is required")
	}
	if c.Nodename == "" {
		c.Nodename = os.Getenv(EnvNodename)
	}
	if c.Nodename == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			return nil, badConf("field nodename is empty, %s is unset and the hostname is unknown", EnvNodename)
		}
		c.Nodename = h
	}
	if c.LockFile == "" {
		c.LockFile = DefaultLockFile
	}
	return &c, nil
}
