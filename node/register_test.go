package node

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/internal/testenv"
	"github.com/gingham-net/gingham/node/autodetect"
)

var testEnv *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &testEnv) }

// daemonSetEnv is the agent's environment as the shipped DaemonSet sets
// it: AS and route reflector cluster ID present but empty.
func daemonSetEnv(extra map[string]string) func(string) (string, bool) {
	m := map[string]string{"GINGHAM_NODENAME": "reg-node", "GINGHAM_AS": "", "GINGHAM_RR_CLUSTER_ID": "", "GINGHAM_IP": ""}
	for k, v := range extra {
		m[k] = v
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// TestRegisterKeepsAdminAnnotations: on the real API server, the AS number
// and route reflector cluster ID an administrator put on the Node survive
// an agent start with the DaemonSet's empty settings; explicit settings
// overwrite them.
func TestRegisterKeepsAdminAnnotations(t *testing.T) {
	testenv.Need(t, testEnv)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := testEnv.Client
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "reg-node", Annotations: map[string]string{
		v1.AnnotationASNumber: "65011", v1.AnnotationRouteReflectorClusterID: "1.1.1.1", "example.com/other": "kept",
	}}}
	if err := c.Create(ctx, node); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), node) })
	ip := netip.MustParsePrefix("10.0.1.11/24")

	steps := []struct {
		name string
		env  map[string]string
		want map[string]string
	}{
		{name: "empty settings keep the administrator's values", want: map[string]string{
			v1.AnnotationIPv4Address: "10.0.1.11/24", v1.AnnotationASNumber: "65011", v1.AnnotationRouteReflectorClusterID: "1.1.1.1"}},
		{name: "GINGHAM_AS=0 keeps them too", env: map[string]string{"GINGHAM_AS": "0"}, want: map[string]string{
			v1.AnnotationASNumber: "65011", v1.AnnotationRouteReflectorClusterID: "1.1.1.1"}},
		{name: "explicit settings overwrite", env: map[string]string{"GINGHAM_AS": "65100", "GINGHAM_RR_CLUSTER_ID": "2.2.2.2"}, want: map[string]string{
			v1.AnnotationASNumber: "65100", v1.AnnotationRouteReflectorClusterID: "2.2.2.2"}},
		{name: "and stay after a later start with empty settings", want: map[string]string{
			v1.AnnotationASNumber: "65100", v1.AnnotationRouteReflectorClusterID: "2.2.2.2"}},
	}
	for _, st := range steps {
		cfg, err := LoadConfig(nil, daemonSetEnv(st.env))
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if err := registerNode(ctx, c, cfg, ip, zap.NewNop()); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		var got corev1.Node
		if err := c.Get(ctx, client.ObjectKey{Name: "reg-node"}, &got); err != nil {
			t.Fatal(err)
		}
		for k, v := range st.want {
			if got.Annotations[k] != v {
				t.Errorf("%s: annotation %s = %q, want %q", st.name, k, got.Annotations[k], v)
			}
		}
		if got.Annotations["example.com/other"] != "kept" {
			t.Errorf("%s: an unrelated annotation changed: %v", st.name, got.Annotations)
		}
	}
}

// TestNodeAddressInternalIP: kubernetes-internal-ip waits for the Node's
// InternalIP and takes the prefix length of the interface holding it;
// GINGHAM_IP wins over any method.
func TestNodeAddressInternalIP(t *testing.T) {
	testenv.Need(t, testEnv)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := testEnv.Client
	host := fixedHost{{Index: 2, Name: "eth0", Up: true, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.2.7/23")}}}
	cfg, err := LoadConfig(nil, daemonSetEnv(map[string]string{"GINGHAM_NODENAME": "ip-node", "GINGHAM_IP_AUTODETECTION_METHOD": "kubernetes-internal-ip"}))
	if err != nil {
		t.Fatal(err)
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "ip-node"}}
	if err := c.Create(ctx, node); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), node) })
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "ip-node"},
		{Type: corev1.NodeInternalIP, Address: "fd00::7"}, {Type: corev1.NodeInternalIP, Address: "10.0.2.7"}}
	if err := c.Status().Update(ctx, node); err != nil {
		t.Fatal(err)
	}
	got, err := nodeAddress(ctx, c, cfg, host, zap.NewNop())
	if err != nil || got.String() != "10.0.2.7/23" {
		t.Fatalf("nodeAddress = %s, %v; want 10.0.2.7/23", got, err)
	}
	cfg.NodeIP = netip.MustParsePrefix("192.168.0.1/24")
	if got, err := nodeAddress(ctx, c, cfg, host, zap.NewNop()); err != nil || got != cfg.NodeIP {
		t.Fatalf("with GINGHAM_IP: %s, %v", got, err)
	}
}

// fixedHost is a Host with fixed interfaces and no routes.
type fixedHost []autodetect.Iface

var _ autodetect.Host = fixedHost(nil)

func (h fixedHost) Interfaces() ([]autodetect.Iface, error) { return h, nil }

func (fixedHost) SourceFor(context.Context, string) (netip.Addr, error) {
	return netip.Addr{}, context.DeadlineExceeded
}
