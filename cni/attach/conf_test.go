package attach

import (
	"strings"
	"testing"
)

// TestParseConf: every accepted key is read into the configuration, and
// anything else is refused with the key's name.
func TestParseConf(t *testing.T) {
	const base = `"cniVersion":"1.1.0","name":"k8s-pod-network","type":"gingham","ipam":{"type":"gingham-ipam"}`
	tests := []struct {
		name    string
		extra   string // more keys after base
		wantErr string
		check   func(t *testing.T, c *NetConf)
	}{
		{name: "defaults", check: func(t *testing.T, c *NetConf) {
			if c.StateDir != DefaultStateDir || c.InterfacePrefix != "cali" || c.RouteProtocol != 96 || c.MTU != 0 || c.Kubeconfig != "" {
				t.Errorf("defaults: %+v", c)
			}
		}},
		{name: "calico keys", extra: `"nodename":"n1","mtu":1440,"log_level":"debug","log_file_path":"/var/log/x.log","kubernetes":{"kubeconfig":"/k"}`,
			check: func(t *testing.T, c *NetConf) {
				if c.Nodename != "n1" || c.MTU != 1440 || c.LogLevel != "debug" || c.LogFilePath != "/var/log/x.log" || c.Kubeconfig != "/k" {
					t.Errorf("got %+v", c)
				}
			}},
		{name: "gingham keys", extra: `"state_dir":"/s","interface_prefix":"gh","route_protocol":77,"lock_file":"/l"`,
			check: func(t *testing.T, c *NetConf) {
				if c.StateDir != "/s" || c.InterfacePrefix != "gh" || c.RouteProtocol != 77 || c.LockFile != "/l" {
					t.Errorf("got %+v", c)
				}
			}},
		{name: "legacy spellings", extra: `"stateDir":"/old","kubeconfig":"/oldk"`, check: func(t *testing.T, c *NetConf) {
			if c.StateDir != "/old" || c.Kubeconfig != "/oldk" {
				t.Errorf("got %+v", c)
			}
		}},
		{name: "runtime keys", extra: `"runtimeConfig":{"portMappings":[]},"args":{"cni":{}},"capabilities":{"portMappings":true},"cni.dev/valid-attachments":[{"containerID":"c","ifname":"eth0"}]`,
			check: func(t *testing.T, c *NetConf) {
				if len(c.ValidAttachments) != 1 || c.ValidAttachments[0].ContainerID != "c" {
					t.Errorf("valid attachments %+v", c.ValidAttachments)
				}
			}},
		{name: "calico-only key refused", extra: `"datastore_type":"kubernetes"`, wantErr: `unknown key "datastore_type"`},
		{name: "policy refused", extra: `"policy":{"type":"k8s"}`, wantErr: `"policy"`},
		{name: "old camelCase prefix refused", extra: `"interfacePrefix":"cali"`, wantErr: `"interfacePrefix"`},
		{name: "unknown kubernetes key", extra: `"kubernetes":{"kubeconfig":"/k","k8s_api_root":"x"}`, wantErr: `"kubernetes.k8s_api_root"`},
		{name: "state dirs disagree", extra: `"state_dir":"/a","stateDir":"/b"`, wantErr: "disagree"},
		{name: "kubeconfigs disagree", extra: `"kubeconfig":"/a","kubernetes":{"kubeconfig":"/b"}`, wantErr: "disagree"},
		{name: "bad log level", extra: `"log_level":"verbose"`, wantErr: "log_level"},
		{name: "long prefix", extra: `"interface_prefix":"toolong"`, wantErr: "interface_prefix"},
		{name: "bad protocol", extra: `"route_protocol":2`, wantErr: "route_protocol"},
		{name: "negative mtu", extra: `"mtu":-1`, wantErr: "mtu"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := "{" + base
			if tc.extra != "" {
				doc += "," + tc.extra
			}
			c, err := ParseConf([]byte(doc + "}"))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
	if _, err := ParseConf([]byte(`{"name":"n","type":"gingham"}`)); err == nil || !strings.Contains(err.Error(), "ipam.type") {
		t.Errorf("no ipam: err = %v", err)
	}
}
