package model

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/gingham-net/gingham/api/v1"
)

func ptr[T any](v T) *T { return &v }

func TestPoolFromAPI(t *testing.T) {
	tests := []struct {
		name      string
		spec      v1.IPPoolSpec
		wantField string // empty: valid
		check     func(t *testing.T, p Pool)
	}{
		{name: "v4 defaults", spec: v1.IPPoolSpec{CIDR: "10.244.0.0/16"}, check: func(t *testing.T, p Pool) {
			if p.BlockSize != 26 || p.IPIPMode != EncapNever || p.NodeSelector.String() != "all()" || !p.Allows(v1.UseWorkload) || !p.Allows(v1.UseTunnel) {
				t.Errorf("defaults not applied: %+v", p)
			}
		}},
		{name: "v6 default block", spec: v1.IPPoolSpec{CIDR: "fd00::/48"}, check: func(t *testing.T, p Pool) {
			if p.BlockSize != 122 {
				t.Errorf("blockSize = %d", p.BlockSize)
			}
		}},
		{name: "selector matches", spec: v1.IPPoolSpec{CIDR: "10.0.0.0/16", NodeSelector: "rack == 'r1'"}, check: func(t *testing.T, p Pool) {
			if !p.SelectsNode(map[string]string{"rack": "r1"}) || p.SelectsNode(map[string]string{"rack": "r2"}) {
				t.Error("selector wrong")
			}
		}},
		{name: "bad cidr", spec: v1.IPPoolSpec{CIDR: "x"}, wantField: "spec.cidr"},
		{name: "unmasked", spec: v1.IPPoolSpec{CIDR: "10.0.0.1/16"}, wantField: "spec.cidr"},
		{name: "block range", spec: v1.IPPoolSpec{CIDR: "10.0.0.0/16", BlockSize: ptr(19)}, wantField: "spec.blockSize"},
		{name: "too small", spec: v1.IPPoolSpec{CIDR: "10.0.0.0/28"}, wantField: "spec.blockSize"},
		{name: "too small but disabled", spec: v1.IPPoolSpec{CIDR: "10.0.0.0/28", Disabled: true}},
		{name: "ipip v6", spec: v1.IPPoolSpec{CIDR: "fd00::/48", IPIPMode: v1.EncapAlways}, wantField: "spec.ipipMode"},
		{name: "both encaps", spec: v1.IPPoolSpec{CIDR: "10.0.0.0/16", IPIPMode: v1.EncapAlways, VXLANMode: v1.EncapAlways}, wantField: "spec.ipipMode"},
		{name: "link local", spec: v1.IPPoolSpec{CIDR: "169.254.0.0/20"}, wantField: "spec.cidr"},
		{name: "bad mode", spec: v1.IPPoolSpec{CIDR: "10.0.0.0/16", IPIPMode: "Sometimes"}, wantField: "spec.ipipMode"},
		{name: "bad selector", spec: v1.IPPoolSpec{CIDR: "10.0.0.0/16", NodeSelector: "a = 'b'"}, wantField: "spec.nodeSelector"},
		{name: "global selector", spec: v1.IPPoolSpec{CIDR: "10.0.0.0/16", NodeSelector: "global()"}, wantField: "spec.nodeSelector"},
		{name: "lb mixed", spec: v1.IPPoolSpec{CIDR: "10.0.0.0/16", AllowedUses: []v1.IPPoolAllowedUse{v1.UseLoadBalancer, v1.UseWorkload}}, wantField: "spec.allowedUses"},
		{name: "unknown use", spec: v1.IPPoolSpec{CIDR: "10.0.0.0/16", AllowedUses: []v1.IPPoolAllowedUse{"Printing"}}, wantField: "spec.allowedUses"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := PoolFromAPI(&v1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: tc.spec})
			if tc.wantField != "" {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != tc.wantField || !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want a FieldError on %s", err, tc.wantField)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, p)
			}
		})
	}
}

func TestPoolsKeepsValidOnes(t *testing.T) {
	pools, errs := Pools([]v1.IPPool{
		{ObjectMeta: metav1.ObjectMeta{Name: "good"}, Spec: v1.IPPoolSpec{CIDR: "10.1.0.0/16"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "bad"}, Spec: v1.IPPoolSpec{CIDR: "nope"}},
	})
	if len(pools) != 1 || len(errs) != 1 || !strings.Contains(errs[0].Error(), "IPPool bad") {
		t.Fatalf("pools=%v errs=%v", pools, errs)
	}
}

func TestNodeFromAPI(t *testing.T) {
	n, err := NodeFromAPI(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Annotations: map[string]string{
		v1.AnnotationIPv4Address: "10.0.1.11/24", v1.AnnotationASNumber: "65001", v1.AnnotationRouteReflectorClusterID: "1.0.0.1",
	}}})
	if err != nil || n.IPv4.String() != "10.0.1.11/24" || n.ASNumber != 65001 || !n.IsRouteReflector() {
		t.Fatalf("n=%+v err=%v", n, err)
	}
	for key, val := range map[string]string{v1.AnnotationIPv4Address: "10.0.1.11", v1.AnnotationASNumber: "0", v1.AnnotationRouteReflectorClusterID: "x", v1.AnnotationIPv4IPIPTunnelAddr: "fd00::1"} {
		_, err := NodeFromAPI(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", Annotations: map[string]string{key: val}}})
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("annotation %s=%q: err = %v, want it named", key, val, err)
		}
	}
}
