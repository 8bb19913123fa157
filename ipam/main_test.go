package ipam_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/internal/testenv"
	"github.com/gingham-net/gingham/ipam"
	"github.com/gingham-net/gingham/ipam/k8sstore"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// setup gives a test an empty IPAM datastore (the API server is shared by
// the package's tests, which do not run in parallel) and a context.
func setup(t testing.TB) (context.Context, *k8sstore.Store) {
	t.Helper()
	testenv.Need(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	wipe(t)
	t.Cleanup(func() { wipe(t) })
	return ctx, k8sstore.New(env.Client)
}

func wipe(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	for _, obj := range []client.Object{&v1.IPPool{}, &v1.IPAMBlock{}, &v1.BlockAffinity{}, &v1.IPAMHandle{}, &v1.IPAMConfiguration{}, &corev1.Node{}} {
		if err := env.Client.DeleteAllOf(ctx, obj); err != nil {
			t.Fatalf("wipe %T: %v", obj, err)
		}
	}
	zero := int64(0)
	if err := env.Client.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace("default"), client.GracePeriodSeconds(zero)); err != nil {
		t.Fatalf("wipe pods: %v", err)
	}
}

func pool(t testing.TB, name, cidr string, blockSize int, mutate ...func(*v1.IPPoolSpec)) {
	t.Helper()
	p := &v1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1.IPPoolSpec{CIDR: cidr, BlockSize: &blockSize}}
	for _, m := range mutate {
		m(&p.Spec)
	}
	if err := env.Client.Create(context.Background(), p); err != nil {
		t.Fatalf("create pool %s: %v", name, err)
	}
}

func ipamConfig(t testing.TB, strict bool) {
	t.Helper()
	c := &v1.IPAMConfiguration{ObjectMeta: metav1.ObjectMeta{Name: v1.DefaultIPAMConfigName}, Spec: v1.IPAMConfigurationSpec{StrictAffinity: strict}}
	if err := env.Client.Create(context.Background(), c); err != nil {
		t.Fatalf("create IPAMConfiguration: %v", err)
	}
}

func node(t testing.TB, name string, labels map[string]string) {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := env.Client.Create(context.Background(), n); err != nil {
		t.Fatalf("create node %s: %v", name, err)
	}
}

func pod(t testing.TB, name, nodeName string) {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec:       corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	if err := env.Client.Create(context.Background(), p); err != nil {
		t.Fatalf("create pod %s: %v", name, err)
	}
}

func deletePod(t testing.TB, name string) {
	t.Helper()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}}
	if err := env.Client.Delete(context.Background(), p, client.GracePeriodSeconds(0)); err != nil {
		t.Fatalf("delete pod %s: %v", name, err)
	}
}

// state is the whole IPAM datastore, for assertions.
type state struct {
	blocks  []v1.IPAMBlock
	affs    []v1.BlockAffinity
	handles []v1.IPAMHandle
	allocs  []ipam.Allocation
}

func readState(t testing.TB, ctx context.Context, s ipam.Store) state {
	t.Helper()
	var st state
	var bl v1.IPAMBlockList
	var al v1.BlockAffinityList
	var hl v1.IPAMHandleList
	for _, l := range []ipam.ObjectList{&bl, &al, &hl} {
		if err := s.List(ctx, l, nil); err != nil {
			t.Fatalf("list: %v", err)
		}
	}
	st.blocks, st.affs, st.handles = bl.Items, al.Items, hl.Items
	var err error
	if st.allocs, err = ipam.New(s, ipam.Options{}).Allocations(ctx); err != nil {
		t.Fatalf("allocations: %v", err)
	}
	return st
}

// checkBlocksOwnedOnce fails unless every block is affine to exactly one
// node, through exactly one confirmed affinity of that node.
func checkBlocksOwnedOnce(t testing.TB, st state) {
	t.Helper()
	confirmed := map[string][]string{}
	for _, a := range st.affs {
		if a.Spec.State != v1.AffinityConfirmed {
			t.Errorf("affinity %s left in state %s", a.Name, a.Spec.State)
			continue
		}
		confirmed[a.Spec.CIDR] = append(confirmed[a.Spec.CIDR], a.Spec.Node)
	}
	for _, b := range st.blocks {
		owners := confirmed[b.Spec.CIDR]
		if b.Spec.Affinity == nil || len(owners) != 1 || "host:"+owners[0] != *b.Spec.Affinity {
			t.Errorf("block %s: affinity %v, confirmed affinities of nodes %v; want exactly one, matching", b.Spec.CIDR, b.Spec.Affinity, owners)
		}
	}
	if len(confirmed) != len(st.blocks) {
		t.Errorf("%d blocks but affinities for %d CIDRs", len(st.blocks), len(confirmed))
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
