package ctl

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	v1 "github.com/gingham-net/gingham/api/v1"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

// golden compares got with testdata/<name>.golden (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", strings.NewReplacer("/", "_", " ", "_").Replace(name)+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update): %v", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

func ptr[T any](v T) *T { return &v }

var fixedTime = metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))

// fixtures has objects of every kind, as the API server returns them.
func fixtures() map[string][]runtime.Object {
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, ResourceVersion: "42", UID: "00000000-0000-0000-0000-000000000001", CreationTimestamp: fixedTime,
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "ginghamctl"}}}
	}
	return map[string][]runtime.Object{
		"IPPool": {
			&v1.IPPool{ObjectMeta: meta("default-ipv4-ippool"), Spec: v1.IPPoolSpec{CIDR: "10.244.0.0/16", BlockSize: ptr(26), IPIPMode: v1.EncapAlways, VXLANMode: v1.EncapNever, NATOutgoing: true, NodeSelector: "all()", AllowedUses: []v1.IPPoolAllowedUse{v1.UseWorkload, v1.UseTunnel}}},
			&v1.IPPool{ObjectMeta: meta("rack-r1"), Spec: v1.IPPoolSpec{CIDR: "10.245.0.0/18", Disabled: true, DisableBGPExport: true, NodeSelector: "rack == 'r1'"}},
		},
		"BGPPeer": {
			&v1.BGPPeer{ObjectMeta: meta("rr"), Spec: v1.BGPPeerSpec{NodeSelector: "all()", PeerSelector: "has(route-reflector)"}},
			&v1.BGPPeer{ObjectMeta: meta("tor-global"), Spec: v1.BGPPeerSpec{PeerIP: "10.0.0.1", ASNumber: ptr(int64(65001))}},
			&v1.BGPPeer{ObjectMeta: meta("tor-n1"), Spec: v1.BGPPeerSpec{Node: "n1", PeerIP: "[fd00::1]:179", ASNumber: ptr(int64(65002)), LocalASNumber: ptr(int64(64999)),
				Password: &v1.BGPPassword{SecretKeyRef: &v1.SecretKeyRef{Name: "bgp-passwords", Key: "tor-n1"}}}},
		},
		"BGPConfiguration": {
			&v1.BGPConfiguration{ObjectMeta: meta("default"), Spec: v1.BGPConfigurationSpec{LogSeverityScreen: "Info", NodeToNodeMeshEnabled: ptr(false), ASNumber: ptr(int64(64512)), ListenPort: ptr(int32(179)),
				ServiceClusterIPs: []v1.ServiceClusterIPBlock{{CIDR: "10.96.0.0/12"}}}},
			&v1.BGPConfiguration{ObjectMeta: meta("node.n1")},
		},
		"IPAMBlock": {
			&v1.IPAMBlock{ObjectMeta: meta("10-244-0-0-30"), Spec: v1.IPAMBlockSpec{CIDR: "10.244.0.0/30", Affinity: ptr("host:n1"),
				Allocations: []*int{ptr(0), nil, ptr(1), nil}, Unallocated: []int{1, 3},
				Attributes: []v1.AllocationAttribute{{HandleID: ptr("k8s-pod-network.abc"), Secondary: map[string]string{"pod": "web-1", "namespace": "default", "node": "n1"}}, {HandleID: ptr("ipip-tunnel-addr-n1"), Secondary: map[string]string{"node": "n1", "type": "ipipTunnelAddress"}}}}},
		},
		"BlockAffinity": {
			&v1.BlockAffinity{ObjectMeta: meta("n1-10-244-0-0-30"), Spec: v1.BlockAffinitySpec{State: v1.AffinityConfirmed, Node: "n1", CIDR: "10.244.0.0/30"}},
		},
		"IPAMHandle": {
			&v1.IPAMHandle{ObjectMeta: meta("k8s-pod-network.abc"), Spec: v1.IPAMHandleSpec{HandleID: "k8s-pod-network.abc", Block: map[string]int{"10.244.0.0/30": 1}}},
		},
		"IPAMConfiguration": {
			&v1.IPAMConfiguration{ObjectMeta: meta("default"), Spec: v1.IPAMConfigurationSpec{StrictAffinity: true, MaxBlocksPerHost: 4}},
		},
		"GinghamNodeStatus": {nodeStatusFixture("n1"), &v1.GinghamNodeStatus{ObjectMeta: meta("n2")}},
	}
}

func nodeStatusFixture(name string) *v1.GinghamNodeStatus {
	return &v1.GinghamNodeStatus{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: v1.GinghamNodeStatusStatus{
		AgentVersion: "v0.1.0", AgentState: "Ready", LastUpdated: &fixedTime, RoutesProgrammed: 12, RoutesLearned: 10, RoutesAdvertised: 2,
		Sessions: []v1.BGPSessionStatus{
			{PeerAddress: "10.0.0.2", PeerType: "node-to-node mesh", State: "Established", Since: &fixedTime, Info: "Established"},
			{PeerAddress: "10.0.0.1", PeerType: "global", State: "Active", Info: "Connect: connection refused"},
			{PeerAddress: "fd00::1", PeerType: "node specific", State: "Established", Since: &fixedTime},
		},
		UnavailablePools: []v1.PoolCondition{{Pool: "v6-vxlan", Reason: "VXLANUnsupported", Message: "gingham does not implement VXLAN"}},
	}}
}

func toUnstructured(t *testing.T, kind string, objs []runtime.Object) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, o := range objs {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{Object: m}
		u.SetGroupVersionKind(v1.GroupVersion.WithKind(kind))
		out = append(out, u)
	}
	return out
}

// TestTables renders every kind's narrow and wide table, and an empty one.
func TestTables(t *testing.T) {
	reg := newRegistry()
	fx := fixtures()
	for _, res := range reg.order {
		for _, format := range []string{"", "wide"} {
			name := "TestTables/" + res.Kind + "/" + map[string]string{"": "narrow", "wide": "wide"}[format]
			t.Run(res.Kind+"/"+format, func(t *testing.T) {
				var out, errOut bytes.Buffer
				a := &app{reg: reg, deps: Deps{Streams: IOStreams{Out: &out, ErrOut: &errOut}}}
				f, _ := parseOutput(format)
				if err := a.printTable(&out, res, toUnstructured(t, res.Kind, fx[res.Kind]), f); err != nil {
					t.Fatal(err)
				}
				if errOut.Len() != 0 {
					t.Errorf("stderr: %q", errOut.String())
				}
				golden(t, name, out.String())
			})
		}
	}
	t.Run("empty IPPool wide", func(t *testing.T) {
		var out, errOut bytes.Buffer
		a := &app{reg: reg, deps: Deps{Streams: IOStreams{Out: &out, ErrOut: &errOut}}}
		res, _ := reg.lookup("ippools")
		if err := a.printTable(&out, res, nil, outputFormat{Kind: "wide"}); err != nil {
			t.Fatal(err)
		}
		golden(t, "TestTables/empty-IPPool-wide", out.String()+"--- stderr\n"+errOut.String())
	})
}

// TestDocuments renders YAML and JSON, one object bare and several as a list.
func TestDocuments(t *testing.T) {
	pools := toUnstructured(t, "IPPool", fixtures()["IPPool"])
	for _, tc := range []struct {
		name   string
		format string
		objs   []*unstructured.Unstructured
		single bool
	}{
		{"yaml-single", "yaml", pools[:1], true},
		{"yaml-list", "yaml", pools, false},
		{"yaml-empty-list", "yaml", nil, false},
		{"json-single", "json", pools[:1], true},
		{"json-list", "json", pools, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := printDocument(&out, tc.format, tc.objs, "IPPoolList", "77", tc.single); err != nil {
				t.Fatal(err)
			}
			golden(t, "TestDocuments/"+tc.name, out.String())
		})
	}
}

func TestCustomColumns(t *testing.T) {
	reg := newRegistry()
	res, _ := reg.lookup("ippool")
	pools := toUnstructured(t, "IPPool", fixtures()["IPPool"])
	for _, tc := range []struct{ name, spec, wantErr string }{
		{name: "jsonpath", spec: "NAME:.metadata.name,CIDR:.spec.cidr,BLOCK:.spec.blockSize,uses:.spec.allowedUses[*]"},
		{name: "column-names", spec: "NAME,ipipmode,DISABLED"},
		{name: "unknown-column", spec: "NAME,COLOUR", wantErr: `IPPool has no column "COLOUR"`},
		{name: "bad-jsonpath", spec: "X:.spec[", wantErr: "bad JSONPath"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			a := &app{reg: reg, deps: Deps{Streams: IOStreams{Out: &out, ErrOut: &out}}}
			err := a.printTable(&out, res, pools, outputFormat{Kind: "custom-columns", Columns: tc.spec})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "TestCustomColumns/"+tc.name, out.String())
		})
	}
}

func TestNodeStatusRender(t *testing.T) {
	for _, tc := range []struct {
		name string
		st   *v1.GinghamNodeStatus
	}{
		{"sessions", nodeStatusFixture("n1")},
		{"no-sessions", &v1.GinghamNodeStatus{ObjectMeta: metav1.ObjectMeta{Name: "n2"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := renderNodeStatus(&out, tc.st); err != nil {
				t.Fatal(err)
			}
			golden(t, "TestNodeStatusRender/"+tc.name, out.String())
		})
	}
}

func TestAgentVersionsRender(t *testing.T) {
	var out bytes.Buffer
	n3 := nodeStatusFixture("n3")
	n3.Status.AgentVersion = "v0.2.0"
	items := []v1.GinghamNodeStatus{*n3, *nodeStatusFixture("n1"), {ObjectMeta: metav1.ObjectMeta{Name: "n2"}}, *nodeStatusFixture("n0")}
	if err := renderAgentVersions(&out, items); err != nil {
		t.Fatal(err)
	}
	if err := renderAgentVersions(&out, nil); err != nil {
		t.Fatal(err)
	}
	golden(t, "TestAgentVersionsRender", out.String())
}

func ipamFixture() *ipamState {
	fx := fixtures()
	st := &ipamState{}
	for _, o := range fx["IPPool"] {
		st.Pools = append(st.Pools, *o.(*v1.IPPool))
	}
	for _, o := range fx["IPAMBlock"] {
		st.Blocks = append(st.Blocks, *o.(*v1.IPAMBlock))
	}
	// A block of a deleted pool, and one with a broken allocation.
	st.Blocks = append(st.Blocks,
		v1.IPAMBlock{ObjectMeta: metav1.ObjectMeta{Name: "192-168-0-0-31"}, Spec: v1.IPAMBlockSpec{CIDR: "192.168.0.0/31", Allocations: []*int{ptr(0), ptr(5)}, Unallocated: []int{0},
			Attributes: []v1.AllocationAttribute{{HandleID: ptr("gone-handle"), Secondary: map[string]string{"pod": "old", "namespace": "default"}}}}})
	for _, o := range fx["BlockAffinity"] {
		st.Affinities = append(st.Affinities, *o.(*v1.BlockAffinity))
	}
	st.Affinities = append(st.Affinities, v1.BlockAffinity{ObjectMeta: metav1.ObjectMeta{Name: "n2-10-244-0-64-26"}, Spec: v1.BlockAffinitySpec{State: v1.AffinityConfirmed, Node: "n2", CIDR: "10.244.0.64/26"}})
	for _, o := range fx["IPAMHandle"] {
		st.Handles = append(st.Handles, *o.(*v1.IPAMHandle))
	}
	st.Handles = append(st.Handles,
		v1.IPAMHandle{ObjectMeta: metav1.ObjectMeta{Name: "empty"}, Spec: v1.IPAMHandleSpec{HandleID: "empty"}},
		v1.IPAMHandle{ObjectMeta: metav1.ObjectMeta{Name: "ipip-tunnel-addr-n1"}, Spec: v1.IPAMHandleSpec{HandleID: "ipip-tunnel-addr-n1", Block: map[string]int{"10.244.0.0/30": 2}}})
	return st
}

func TestIPAMShowRender(t *testing.T) {
	st := ipamFixture()
	for _, tc := range []struct {
		name       string
		st         *ipamState
		showBlocks bool
		ip         string
	}{
		{name: "pools", st: st},
		{name: "blocks", st: st, showBlocks: true},
		{name: "empty", st: &ipamState{}},
		{name: "ip-in-use", st: st, ip: "10.244.0.2"},
		{name: "ip-pod", st: st, ip: "10.244.0.0"},
		{name: "ip-free", st: st, ip: "10.244.0.1"},
		{name: "ip-no-block", st: st, ip: "10.244.9.9"},
		{name: "ip-bad-attribute", st: st, ip: "192.168.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if tc.ip != "" {
				renderIPOwner(&out, tc.st, mustAddr(t, tc.ip))
			} else {
				renderIPAMShow(&out, tc.st, tc.showBlocks)
			}
			golden(t, "TestIPAMShowRender/"+tc.name, out.String())
		})
	}
}

func TestIPAMCheck(t *testing.T) {
	pods := []corev1.Pod{{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "default"}}}
	nodes := []corev1.Node{{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}}
	r := checkIPAM(ipamFixture(), pods, nodes)
	var text bytes.Buffer
	renderCheckReport(&text, r)
	golden(t, "TestIPAMCheck/text", text.String())
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "TestIPAMCheck/json", string(js)+"\n")

	clean := checkIPAM(&ipamState{Pools: ipamFixture().Pools}, nil, nil)
	if len(clean.Problems) != 0 {
		t.Errorf("empty IPAM has problems: %+v", clean.Problems)
	}
}
