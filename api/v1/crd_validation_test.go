package v1_test

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/gingham-net/gingham/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

func obj(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatalf("bad test YAML: %v\n%s", err, doc)
	}
	if u.GetAPIVersion() == "" {
		u.SetAPIVersion("gingham.dev/v1")
	}
	return u
}

// TestAPIServerRefusesInvalidObjects sends invalid objects to the real API
// server, which must refuse each with a message naming the field.
func TestAPIServerRefusesInvalidObjects(t *testing.T) {
	testenv.Need(t, env)
	tests := []struct {
		name      string
		doc       string
		wantField string // field path the message must name
		wantText  string // reason the message must give
	}{
		{"pool cidr unparsable", "kind: IPPool\nmetadata: {name: p}\nspec: {cidr: not-a-cidr}", "spec.cidr", "must be a valid subnet"},
		{"pool cidr not masked", "kind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.1/16}", "spec.cidr", "not strictly masked"},
		{"pool cidr missing", "kind: IPPool\nmetadata: {name: p}\nspec: {blockSize: 26}", "spec.cidr", "Required"},
		{"pool blockSize below 20", "kind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/8, blockSize: 19}", "spec.blockSize", "between 20 and 32"},
		{"pool blockSize above 32", "kind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/8, blockSize: 33}", "spec.blockSize", "between 20 and 32"},
		{"pool v6 blockSize out of range", "kind: IPPool\nmetadata: {name: p}\nspec: {cidr: 'fd00::/48', blockSize: 100}", "spec.blockSize", "between 116 and 128"},
		{"pool smaller than block", "kind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/27, blockSize: 26}", "spec.blockSize", "too small"},
		{"pool smaller than default block", "kind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/28}", "spec.blockSize", "too small"},
		{"pool ipip on v6", "kind: IPPool\nmetadata: {name: p}\nspec: {cidr: 'fd00::/48', ipipMode: Always}", "spec.ipipMode", "IPIP is not supported on IPv6"},
		{"pool ipip and vxlan", "kind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/16, ipipMode: Always, vxlanMode: CrossSubnet}", "spec.ipipMode", "cannot both be enabled"},
		{"pool inside link local", "kind: IPPool\nmetadata: {name: p}\nspec: {cidr: 169.254.10.0/24}", "spec.cidr", "link local"},
		{"pool covering link local", "kind: IPPool\nmetadata: {name: p}\nspec: {cidr: 128.0.0.0/1, blockSize: 26}", "spec.cidr", "link local"},
		{"pool unknown ipipMode", "kind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/16, ipipMode: Sometimes}", "spec.ipipMode", "Unsupported value"},
		{"pool malformed nodeSelector", "kind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/16, nodeSelector: \"rack = 'r1'\"}", "spec.nodeSelector", "not a valid selector"},
		{"pool global selector", "kind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/16, nodeSelector: 'global()'}", "spec.nodeSelector", "global()"},
		{"pool loadbalancer with workload", "kind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/16, allowedUses: [Workload, LoadBalancer]}", "spec.allowedUses", "cannot be combined"},
		{"pool unknown use", "kind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/16, allowedUses: [Printing]}", "spec.allowedUses", "Unsupported value"},
		{"peer node and nodeSelector", "kind: BGPPeer\nmetadata: {name: b}\nspec: {node: n1, nodeSelector: all(), peerIP: 10.0.0.1, asNumber: 65000}", "spec.nodeSelector", "cannot both be set"},
		{"peer peerIP and peerSelector", "kind: BGPPeer\nmetadata: {name: b}\nspec: {peerIP: 10.0.0.1, peerSelector: has(rr)}", "spec.peerSelector", "cannot both be set"},
		{"peer asNumber with peerSelector", "kind: BGPPeer\nmetadata: {name: b}\nspec: {peerSelector: has(rr), asNumber: 65000}", "spec.asNumber", "must be empty when peerSelector is set"},
		{"peer no peer", "kind: BGPPeer\nmetadata: {name: b}\nspec: {node: n1}", "spec.peerIP", "one of peerIP or peerSelector"},
		{"peer peerIP without asNumber", "kind: BGPPeer\nmetadata: {name: b}\nspec: {peerIP: 10.0.0.1}", "spec.asNumber", "must be set when peerIP is set"},
		{"peer bad peerIP", "kind: BGPPeer\nmetadata: {name: b}\nspec: {peerIP: 10.0.0.300, asNumber: 65000}", "spec.peerIP", "must be an IP address"},
		{"peer bad port", "kind: BGPPeer\nmetadata: {name: b}\nspec: {peerIP: '10.0.0.1:70000', asNumber: 65000}", "spec.peerIP", "must be an IP address"},
		{"peer asNumber zero", "kind: BGPPeer\nmetadata: {name: b}\nspec: {peerIP: 10.0.0.1, asNumber: 0}", "spec.asNumber", "greater than or equal to 1"},
		{"peer asNumber too big", "kind: BGPPeer\nmetadata: {name: b}\nspec: {peerIP: 10.0.0.1, asNumber: 4294967296}", "spec.asNumber", "less than or equal to 4294967295"},
		{"peer malformed peerSelector", "kind: BGPPeer\nmetadata: {name: b}\nspec: {peerSelector: 'has(rr'}", "spec.peerSelector", "not a valid selector"},
		{"peer reachableBy without peerIP", "kind: BGPPeer\nmetadata: {name: b}\nspec: {peerSelector: has(rr), reachableBy: 10.0.0.254}", "spec.reachableBy", "must be empty when peerIP is empty"},
		{"peer keepOriginalNextHop and nextHopMode", "kind: BGPPeer\nmetadata: {name: b}\nspec: {peerIP: 10.0.0.1, asNumber: 65000, keepOriginalNextHop: true, nextHopMode: Self}", "spec.nextHopMode", "cannot both be set"},
		{"peer unknown nextHopMode", "kind: BGPPeer\nmetadata: {name: b}\nspec: {peerIP: 10.0.0.1, asNumber: 65000, nextHopMode: Sometimes}", "spec.nextHopMode", "Unsupported value"},
		{"peer ttlSecurity zero", "kind: BGPPeer\nmetadata: {name: b}\nspec: {peerIP: 10.0.0.1, asNumber: 65000, ttlSecurity: 0}", "spec.ttlSecurity", "greater than or equal to 1"},
		{"bgpconfig asNumber zero", "kind: BGPConfiguration\nmetadata: {name: default}\nspec: {asNumber: 0}", "spec.asNumber", "greater than or equal to 1"},
		{"bgpconfig listenPort out of range", "kind: BGPConfiguration\nmetadata: {name: default}\nspec: {listenPort: 70000}", "spec.listenPort", "less than or equal to 65535"},
		{"bgpconfig bad name", "kind: BGPConfiguration\nmetadata: {name: cluster}\nspec: {}", "metadata.name", "must be 'default' or 'node.<nodename>'"},
		{"bgpconfig mesh password without mesh", "kind: BGPConfiguration\nmetadata: {name: default}\nspec: {nodeToNodeMeshEnabled: false, nodeMeshPassword: {secretKeyRef: {name: s, key: k}}}", "spec.nodeMeshPassword", "cannot be set when nodeToNodeMeshEnabled is false"},
		{"bgpconfig unused community", "kind: BGPConfiguration\nmetadata: {name: default}\nspec: {communities: [{name: c1, value: '65000:1'}]}", "spec.communities", "not used in prefixAdvertisements"},
		{"bgpconfig bad community value", "kind: BGPConfiguration\nmetadata: {name: default}\nspec: {communities: [{name: c1, value: abc}], prefixAdvertisements: [{cidr: 10.0.0.0/16, communities: [c1]}]}", "spec.communities[0].value", "should match"},
		{"bgpconfig bad service cidr", "kind: BGPConfiguration\nmetadata: {name: default}\nspec: {serviceClusterIPs: [{cidr: 10.96.0.1/12}]}", "spec.serviceClusterIPs[0].cidr", "strictly masked"},
		{"bgpconfig unknown log severity", "kind: BGPConfiguration\nmetadata: {name: default}\nspec: {logSeverityScreen: Loud}", "spec.logSeverityScreen", "Unsupported value"},
	}
	ctx := context.Background()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := obj(t, tc.doc)
			err := env.Client.Create(ctx, u)
			if err == nil {
				_ = env.Client.Delete(ctx, u)
				t.Fatalf("API server accepted invalid object:\n%s", tc.doc)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.wantField) || !strings.Contains(msg, tc.wantText) {
				t.Fatalf("message does not name field %q with reason %q:\n%s", tc.wantField, tc.wantText, msg)
			}
		})
	}
	if len(tests) < 25 {
		t.Fatalf("only %d invalid cases", len(tests))
	}
}

// TestAPIServerRefusesImmutableChanges changes fields that are fixed once a
// pool exists.
func TestAPIServerRefusesImmutableChanges(t *testing.T) {
	testenv.Need(t, env)
	ctx := context.Background()
	u := obj(t, "kind: IPPool\nmetadata: {name: immutable}\nspec: {cidr: 10.50.0.0/16, blockSize: 26}")
	if err := env.Client.Create(ctx, u); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(ctx, u) })
	for _, tc := range []struct {
		name, field, value, wantField, wantText string
	}{
		{"cidr", "cidr", "10.51.0.0/16", "spec.cidr", "cannot be modified"},
		{"blockSize", "blockSize", "28", "spec.blockSize", "cannot be modified"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur := u.DeepCopy()
			if err := env.Client.Get(ctx, keyOf(cur), cur); err != nil {
				t.Fatal(err)
			}
			var v any = tc.value
			if tc.field == "blockSize" {
				v = int64(28)
			}
			if err := unstructured.SetNestedField(cur.Object, v, "spec", tc.field); err != nil {
				t.Fatal(err)
			}
			err := env.Client.Update(ctx, cur)
			if err == nil || !strings.Contains(err.Error(), tc.wantField) || !strings.Contains(err.Error(), tc.wantText) {
				t.Fatalf("update of %s: err = %v, want %q naming %q", tc.field, err, tc.wantText, tc.wantField)
			}
		})
	}
}

// TestAPIServerAcceptsValidObjectsWithDefaults creates valid objects and
// reads them back with the API server's defaults applied.
func TestAPIServerAcceptsValidObjectsWithDefaults(t *testing.T) {
	testenv.Need(t, env)
	tests := []struct {
		name string
		doc  string
		want map[string]any // field path (dot separated, under the object) -> value read back
	}{
		{"minimal v4 pool", "kind: IPPool\nmetadata: {name: default-ipv4-ippool}\nspec: {cidr: 10.244.0.0/16}", map[string]any{
			"spec.ipipMode": "Never", "spec.vxlanMode": "Never", "spec.nodeSelector": "all()", "spec.allowedUses": []any{"Workload", "Tunnel"},
		}},
		{"v6 pool", "kind: IPPool\nmetadata: {name: v6}\nspec: {cidr: 'fd00:10::/48', blockSize: 122}", map[string]any{
			"spec.blockSize": int64(122), "spec.ipipMode": "Never",
		}},
		{"calico-style full pool", "kind: IPPool\nmetadata: {name: rack1}\nspec: {cidr: 10.100.0.0/22, blockSize: 26, ipipMode: CrossSubnet, natOutgoing: true, disableBGPExport: false, nodeSelector: \"rack == 'r1' && !has(edge)\"}", map[string]any{
			"spec.ipipMode": "CrossSubnet", "spec.natOutgoing": true, "spec.vxlanMode": "Never",
		}},
		{"disabled pool may be smaller than its block", "kind: IPPool\nmetadata: {name: tiny}\nspec: {cidr: 10.200.0.0/28, blockSize: 26, disabled: true}", map[string]any{
			"spec.disabled": true,
		}},
		{"global peer with port", "kind: BGPPeer\nmetadata: {name: tor}\nspec: {peerIP: '10.0.0.1:1790', asNumber: 65001, keepaliveTime: 10s}", map[string]any{
			"spec.sourceAddress": "UseNodeIP", "spec.asNumber": int64(65001),
		}},
		{"route reflector peer", "kind: BGPPeer\nmetadata: {name: rr}\nspec: {nodeSelector: all(), peerSelector: has(route-reflector)}", map[string]any{
			"spec.peerSelector": "has(route-reflector)",
		}},
		{"ipv6 peer with port", "kind: BGPPeer\nmetadata: {name: v6peer}\nspec: {node: n1, peerIP: '[fd00::1]:179', asNumber: 65002}", map[string]any{
			"spec.node": "n1",
		}},
		{"default bgp configuration", "kind: BGPConfiguration\nmetadata: {name: default}\nspec: {}", map[string]any{
			"spec.asNumber": int64(64512), "spec.nodeToNodeMeshEnabled": true, "spec.listenPort": int64(179), "spec.logSeverityScreen": "Info",
		}},
		{"per-node bgp configuration", "kind: BGPConfiguration\nmetadata: {name: node.n1}\nspec: {communities: [{name: c1, value: '65000:100'}], prefixAdvertisements: [{cidr: 10.244.0.0/16, communities: [c1, '65000:200']}]}", map[string]any{
			"spec.nodeToNodeMeshEnabled": true,
		}},
		{"ipam configuration", "kind: IPAMConfiguration\nmetadata: {name: default}\nspec: {strictAffinity: false}", map[string]any{
			"spec.autoAllocateBlocks": true,
		}},
	}
	ctx := context.Background()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := obj(t, tc.doc)
			if err := env.Client.Create(ctx, u); err != nil {
				t.Fatalf("valid object refused: %v\n%s", err, tc.doc)
			}
			t.Cleanup(func() { _ = env.Client.Delete(ctx, u) })
			got := &unstructured.Unstructured{}
			got.SetGroupVersionKind(u.GroupVersionKind())
			if err := env.Client.Get(ctx, keyOf(u), got); err != nil {
				t.Fatal(err)
			}
			for path, want := range tc.want {
				v, found, err := unstructured.NestedFieldNoCopy(got.Object, strings.Split(path, ".")...)
				if err != nil || !found {
					t.Errorf("%s not set after read-back (default missing)", path)
					continue
				}
				if !equal(v, want) {
					t.Errorf("%s = %#v, want %#v", path, v, want)
				}
			}
		})
	}
}

func equal(a, b any) bool {
	ja, _ := yaml.Marshal(a)
	jb, _ := yaml.Marshal(b)
	return string(ja) == string(jb)
}

func keyOf(u *unstructured.Unstructured) client.ObjectKey { return client.ObjectKeyFromObject(u) }
