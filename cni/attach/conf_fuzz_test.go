package attach

import "testing"

// FuzzParseConf feeds arbitrary network configurations (stdin) and CNI_ARGS
// to the parsers: they must return an error, never panic, and a parsed
// configuration always has its defaults.
func FuzzParseConf(f *testing.F) {
	f.Add([]byte(`{"cniVersion":"1.1.0","name":"k8s-pod-network","type":"gingham","ipam":{"type":"gingham-ipam"}}`), "K8S_POD_NAMESPACE=default;K8S_POD_NAME=web")
	f.Add([]byte(`{"cniVersion":"1.0.0","name":"n","type":"gingham","mtu":-1,"interface_prefix":"toolongprefix"}`), "IgnoreUnknown=1")
	f.Add([]byte(`{"name":"n","ipam":{"type":"x"},"kubernetes":{"kubeconfig":"/a"},"kubeconfig":"/b","log_level":"loud"}`), "")
	f.Add([]byte(`{"mtu":"x"}`), "K8S_POD_NAME")
	f.Add([]byte(`null`), ";;=")
	f.Fuzz(func(t *testing.T, stdin []byte, args string) {
		if c, err := ParseConf(stdin); err == nil {
			if c.InterfacePrefix == "" || c.RouteProtocol == 0 || c.StateDir == "" {
				t.Fatalf("parsed configuration without defaults: %+v", c)
			}
		}
		_, _, _ = parseArgs(args)
	})
}
