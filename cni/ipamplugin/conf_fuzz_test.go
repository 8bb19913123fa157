package ipamplugin

import "testing"

// FuzzLoadConf feeds arbitrary network configurations to gingham-ipam's
// parser, and arbitrary pool annotations to parsePools: errors, never a
// panic; a refused configuration always carries a CNI error message.
func FuzzLoadConf(f *testing.F) {
	f.Add([]byte(`{"cniVersion":"1.1.0","name":"k8s-pod-network","type":"gingham","nodename":"n1","kubernetes":{"kubeconfig":"/k"},"ipam":{"type":"gingham-ipam","assign_ipv4":"true"}}`), `["default-ipv4-ippool"]`)
	f.Add([]byte(`{"ipam":{"ipv4_pools":[1,2]}}`), `[""]`)
	f.Add([]byte(`{"name":"n","ipam":{"type":"gingham-ipam","subnet":"usePodCidr"}}`), `[]`)
	f.Add([]byte(`{`), `10.0.0.0/8`)
	f.Fuzz(func(t *testing.T, stdin []byte, pools string) {
		if _, cerr := LoadConf(stdin); cerr != nil && cerr.Msg == "" {
			t.Fatalf("CNI error without a message: %+v", cerr)
		}
		_, _ = parsePools("annotation", pools)
	})
}
