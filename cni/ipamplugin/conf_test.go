package ipamplugin

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/google/go-cmp/cmp"

	"github.com/gingham-net/gingham/ipam"
)

// TestLoadConf: the keys gingham-ipam reads, where it reads them, and the
// ones it refuses.
func TestLoadConf(t *testing.T) {
	t.Setenv(EnvNodename, "from-env")
	tests := []struct {
		name    string
		doc     string
		wantErr string
		check   func(t *testing.T, c *Conf)
	}{
		{name: "delegated: top-level shared keys", doc: `{"name":"net","type":"gingham","mtu":1400,"state_dir":"/s","nodename":"n1",
			"log_level":"info","log_file_path":"/l.log","kubernetes":{"kubeconfig":"/k"},"ipam":{"type":"gingham-ipam"}}`,
			check: func(t *testing.T, c *Conf) {
				if c.Nodename != "n1" || c.Kubeconfig != "/k" || c.LogLevel != "info" || c.LogFilePath != "/l.log" || c.LockFile != DefaultLockFile {
					t.Errorf("got %+v", c)
				}
			}},
		{name: "ipam section wins", doc: `{"name":"net","nodename":"top","kubernetes":{"kubeconfig":"/top"},"lock_file":"/top.lock",
			"ipam":{"type":"gingham-ipam","nodename":"sec","kubeconfig":"/sec","lock_file":"/sec.lock","ipv4_pools":["p1"],"assign_ipv4":"true","assign_ipv6":false}}`,
			check: func(t *testing.T, c *Conf) {
				if c.Nodename != "sec" || c.Kubeconfig != "/sec" || c.LockFile != "/sec.lock" || !cmp.Equal(c.IPAM.IPv4Pools, []string{"p1"}) {
					t.Errorf("got %+v", c)
				}
			}},
		{name: "nodename from the environment", doc: `{"name":"net","type":"gingham-ipam"}`, check: func(t *testing.T, c *Conf) {
			if c.Nodename != "from-env" {
				t.Errorf("nodename %q", c.Nodename)
			}
		}},
		{name: "legacy top-level kubeconfig", doc: `{"name":"net","type":"gingham-ipam","kubeconfig":"/old"}`, check: func(t *testing.T, c *Conf) {
			if c.Kubeconfig != "/old" {
				t.Errorf("kubeconfig %q", c.Kubeconfig)
			}
		}},
		{name: "delegated: main plugin's keys are not ours to refuse", doc: `{"name":"net","type":"bridge","bridge":"cni0","ipam":{"type":"gingham-ipam"}}`},
		{name: "direct: unknown top-level key", doc: `{"name":"net","type":"gingham-ipam","bridge":"cni0"}`, wantErr: `"bridge"`},
		{name: "unknown ipam key", doc: `{"name":"net","ipam":{"type":"gingham-ipam","ranges":[]}}`, wantErr: `"ipam.ranges"`},
		{name: "assign_ipv4 false", doc: `{"name":"net","ipam":{"type":"gingham-ipam","assign_ipv4":"false"}}`, wantErr: "assign_ipv4"},
		{name: "assign_ipv6 true", doc: `{"name":"net","ipam":{"type":"gingham-ipam","assign_ipv6":true}}`, wantErr: "assign_ipv6"},
		{name: "assign flag garbage", doc: `{"name":"net","ipam":{"type":"gingham-ipam","assign_ipv4":"yes please"}}`, wantErr: "true"},
		{name: "bad log level", doc: `{"name":"net","type":"gingham-ipam","log_level":"shout"}`, wantErr: "log_level"},
		{name: "unknown kubernetes key", doc: `{"name":"net","ipam":{"type":"gingham-ipam"},"kubernetes":{"kubeconfig":"/k","datastore":"x"}}`, wantErr: `"kubernetes.datastore"`},
		{name: "no name", doc: `{"type":"gingham-ipam"}`, wantErr: "network name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, cerr := LoadConf([]byte(tc.doc))
			if tc.wantErr != "" {
				if cerr == nil || !strings.Contains(cerr.Msg, tc.wantErr) {
					t.Fatalf("err = %v, want %q", cerr, tc.wantErr)
				}
				return
			}
			if cerr != nil {
				t.Fatal(cerr)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func TestStaleAllocations(t *testing.T) {
	al := func(handle, node, typ string) ipam.Allocation {
		return ipam.Allocation{Addr: netip.MustParseAddr("10.0.0.1"), Handle: handle, Attrs: map[string]string{ipam.AttrNode: node, ipam.AttrType: typ}}
	}
	all := []ipam.Allocation{
		al("net.c1", "n1", ipam.TypeWorkload),   // valid
		al("net.c2", "n1", ipam.TypeWorkload),   // stale
		al("net.c3", "n2", ipam.TypeWorkload),   // another node's
		al("other.c2", "n1", ipam.TypeWorkload), // another network's
		al("netx.c2", "n1", ipam.TypeWorkload),  // a network whose name starts like ours
		al(ipam.TunnelHandle("n1"), "n1", ipam.TypeIPIPTunnel),
		al("net.c4", "n1", ipam.TypeIPIPTunnel), // not a workload
		al("", "n1", ipam.TypeWorkload),         // no handle
		al("net.", "n1", ipam.TypeWorkload),     // empty container ID
	}
	valid := []types.GCAttachment{{ContainerID: "c1", IfName: "eth0"}}
	var got []string
	for _, a := range staleAllocations(all, "net", "n1", valid) {
		got = append(got, a.Handle)
	}
	if diff := cmp.Diff([]string{"net.c2"}, got); diff != "" {
		t.Errorf("stale (-want +got):\n%s", diff)
	}
}
