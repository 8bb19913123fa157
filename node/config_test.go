package node

import (
	"strings"
	"testing"
	"time"

	"github.com/gingham-net/gingham/node/autodetect"
)

func TestLoadConfig(t *testing.T) {
	envOf := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string // substring; empty means success
		check   func(t *testing.T, c Config)
	}{
		{name: "defaults", env: map[string]string{"GINGHAM_NODENAME": "n1"}, check: func(t *testing.T, c Config) {
			if c.NodeName != "n1" || c.RouteProtocol != 96 || c.ResyncInterval != 90*time.Second || c.InterfacePrefix != "cali" || c.DefaultPoolIPIP != "Never" {
				t.Errorf("defaults wrong: %+v", c)
			}
			if c.IPAutodetection.Kind != autodetect.FirstFound || c.MetricsAddr != ":9091" || c.CNIKubeconfig != "/etc/cni/net.d/gingham-kubeconfig" ||
				c.HealthAddr != "127.0.0.1:9099" || c.ASNumber != 0 || c.RRClusterID != "" {
				t.Errorf("defaults wrong: %+v", c)
			}
		}},
		{name: "empty values as the DaemonSet writes them", env: map[string]string{"GINGHAM_NODENAME": "n1", "GINGHAM_AS": "", "GINGHAM_IP": "",
			"GINGHAM_IP_AUTODETECTION_METHOD": "", "GINGHAM_RR_CLUSTER_ID": ""}, check: func(t *testing.T, c Config) {
			if c.ASNumber != 0 || c.NodeIP.IsValid() || c.IPAutodetection.Kind != autodetect.FirstFound {
				t.Errorf("got %+v", c)
			}
		}},
		{name: "metrics and CNI kubeconfig off", env: map[string]string{"GINGHAM_NODENAME": "n", "GINGHAM_METRICS_ADDR": "", "GINGHAM_CNI_KUBECONFIG": ""},
			check: func(t *testing.T, c Config) {
				if c.MetricsAddr != "" || c.CNIKubeconfig != "" {
					t.Errorf("got metrics %q, cni kubeconfig %q; want both off", c.MetricsAddr, c.CNIKubeconfig)
				}
			}},
		{name: "metrics on all addresses", args: []string{"--node-name=n", "--metrics-addr=0.0.0.0:9091"}, check: func(t *testing.T, c Config) {
			if c.MetricsAddr != "0.0.0.0:9091" {
				t.Errorf("got %q", c.MetricsAddr)
			}
		}},
		{name: "autodetection method", env: map[string]string{"GINGHAM_NODENAME": "n", "GINGHAM_IP_AUTODETECTION_METHOD": "can-reach=10.0.0.1"},
			check: func(t *testing.T, c Config) {
				if c.IPAutodetection.Kind != autodetect.CanReach || c.IPAutodetection.Target != "10.0.0.1" {
					t.Errorf("got %+v", c.IPAutodetection)
				}
			}},
		{name: "explicit AS", env: map[string]string{"GINGHAM_NODENAME": "n", "GINGHAM_AS": "65011"}, check: func(t *testing.T, c Config) {
			if c.ASNumber != 65011 {
				t.Errorf("got %d", c.ASNumber)
			}
		}},
		{name: "bad autodetection method", env: map[string]string{"GINGHAM_NODENAME": "n", "GINGHAM_IP_AUTODETECTION_METHOD": "interface"}, wantErr: "GINGHAM_IP_AUTODETECTION_METHOD"},
		{name: "bad autodetection regexp", env: map[string]string{"GINGHAM_NODENAME": "n", "GINGHAM_IP_AUTODETECTION_METHOD": "interface=eth("}, wantErr: "GINGHAM_IP_AUTODETECTION_METHOD"},
		{name: "bad metrics address", env: map[string]string{"GINGHAM_NODENAME": "n", "GINGHAM_METRICS_ADDR": "9091"}, wantErr: "GINGHAM_METRICS_ADDR"},
		{name: "flag beats env", args: []string{"--node-name=n2", "--ip=10.0.0.5/24"}, env: map[string]string{"GINGHAM_NODENAME": "n1"}, check: func(t *testing.T, c Config) {
			if c.NodeName != "n2" || c.NodeIP.String() != "10.0.0.5/24" {
				t.Errorf("got %q %v", c.NodeName, c.NodeIP)
			}
		}},
		{name: "calico ipip spelling", env: map[string]string{"GINGHAM_NODENAME": "n", "GINGHAM_IPV4POOL_IPIP": "cross-subnet"}, check: func(t *testing.T, c Config) {
			if c.DefaultPoolIPIP != "CrossSubnet" {
				t.Errorf("got %q", c.DefaultPoolIPIP)
			}
		}},
		{name: "bad ip", env: map[string]string{"GINGHAM_NODENAME": "n", "GINGHAM_IP": "10.0.0.5"}, wantErr: "GINGHAM_IP (--ip)"},
		{name: "bad level", env: map[string]string{"GINGHAM_NODENAME": "n", "GINGHAM_LOG_LEVEL": "loud"}, wantErr: "GINGHAM_LOG_LEVEL"},
		{name: "bad protocol", args: []string{"--node-name=n", "--route-protocol=2"}, wantErr: "GINGHAM_ROUTE_PROTOCOL"},
		{name: "bad as", args: []string{"--node-name=n", "--as=x"}, wantErr: "GINGHAM_AS"},
		{name: "bad pool cidr", args: []string{"--node-name=n", "--ipv4pool-cidr=10.0.0.1/16"}, wantErr: "GINGHAM_IPV4POOL_CIDR"},
		{name: "bad ipip", args: []string{"--node-name=n", "--ipv4pool-ipip=sometimes"}, wantErr: "GINGHAM_IPV4POOL_IPIP"},
		{name: "bad resync", args: []string{"--node-name=n", "--resync-interval=5ms"}, wantErr: "GINGHAM_RESYNC_INTERVAL"},
		{name: "bad rr id", args: []string{"--node-name=n", "--rr-cluster-id=abc"}, wantErr: "GINGHAM_RR_CLUSTER_ID"},
		{name: "bad mtu", args: []string{"--node-name=n", "--mtu=100"}, wantErr: "GINGHAM_MTU"},
		{name: "two errors both named", args: []string{"--node-name=n", "--mtu=100", "--as=-1"}, wantErr: "GINGHAM_AS"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := LoadConfig(tc.args, envOf(tc.env))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to name %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}
