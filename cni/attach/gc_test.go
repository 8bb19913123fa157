package attach

import (
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/google/go-cmp/cmp"

	"github.com/gingham-net/gingham/internal/netlinkx"
)

func TestVethAlias(t *testing.T) {
	a, ok := vethAlias("k8s-pod-network", "0123abc", "eth0")
	if !ok || a != "gingham/k8s-pod-network/0123abc/eth0" {
		t.Fatalf("alias %q %v", a, ok)
	}
	net, att, ok := parseVethAlias(a)
	if !ok || net != "k8s-pod-network" || att != (types.GCAttachment{ContainerID: "0123abc", IfName: "eth0"}) {
		t.Fatalf("parse %q = %q %+v %v", a, net, att, ok)
	}
	if net, att, ok := parseVethAlias("gingham/net/with/slash/c1/eth0"); !ok || net != "net/with/slash" || att.ContainerID != "c1" {
		t.Errorf("network with slashes: %q %+v %v", net, att, ok)
	}
	if _, ok := vethAlias("n", strings.Repeat("c", 250), "eth0"); ok {
		t.Error("an alias longer than the kernel keeps was accepted")
	}
	for _, bad := range []string{"", "gingham/", "gingham/n/c", "gingham//c/eth0", "gingham/n//eth0", "gingham/n/c/", "other/n/c/eth0"} {
		if _, _, ok := parseVethAlias(bad); ok {
			t.Errorf("parseVethAlias(%q) accepted", bad)
		}
	}
}

func TestStaleVeths(t *testing.T) {
	veth := func(name, alias string) netlinkx.Link { return netlinkx.Link{Name: name, Kind: "veth", Alias: alias} }
	links := []netlinkx.Link{
		veth("cali0000000001", "gingham/k8s-pod-network/c1/eth0"),                         // valid
		veth("cali0000000002", "gingham/k8s-pod-network/c2/eth0"),                         // stale
		veth("cali0000000003", "gingham/k8s-pod-network/c1/net1"),                         // same container, other interface: stale
		veth("cali0000000004", "gingham/other-network/c9/eth0"),                           // another network's
		veth("cali0000000005", ""),                                                        // no alias (older gingham, or not ours)
		veth("cali0000000006", "set by an admin"),                                         // foreign alias
		veth("veth1234", "gingham/k8s-pod-network/c7/eth0"),                               // not our prefix
		{Name: "cali0000000008", Kind: "dummy", Alias: "gingham/k8s-pod-network/c8/eth0"}, // not a veth
	}
	tests := []struct {
		name  string
		valid []types.GCAttachment
		want  []string
	}{
		{name: "one valid", valid: []types.GCAttachment{{ContainerID: "c1", IfName: "eth0"}}, want: []string{"cali0000000002", "cali0000000003"}},
		{name: "all valid", valid: []types.GCAttachment{{ContainerID: "c1", IfName: "eth0"}, {ContainerID: "c2", IfName: "eth0"}, {ContainerID: "c1", IfName: "net1"}}},
		{name: "none valid", valid: []types.GCAttachment{}, want: []string{"cali0000000001", "cali0000000002", "cali0000000003"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, l := range staleVeths(links, "k8s-pod-network", "cali", tc.valid) {
				got = append(got, l.Name)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("stale (-want +got):\n%s", diff)
			}
		})
	}
}
