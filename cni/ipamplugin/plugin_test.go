package ipamplugin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
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

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// plugin builds gingham-ipam the way it is installed (the gingham-cni
// binary under the name gingham-ipam) once per test binary.
func plugin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gingham-ipam-test")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "gingham-ipam")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/gingham-cni")
		cmd.Dir = testenv.Root()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// runtime drives the plugin exactly as a container runtime does.
type runtime struct {
	t    *testing.T
	conf map[string]any
}

type cniResult struct {
	code   int
	stdout []byte
	stderr string
}

func (r runtime) run(command, containerID, cniArgs string) cniResult {
	r.t.Helper()
	conf, _ := json.Marshal(r.conf)
	cmd := exec.Command(plugin(r.t))
	cmd.Env = []string{
		"CNI_COMMAND=" + command, "CNI_CONTAINERID=" + containerID, "CNI_NETNS=/var/run/netns/" + containerID,
		"CNI_IFNAME=eth0", "CNI_ARGS=" + cniArgs, "CNI_PATH=/opt/cni/bin", "PATH=" + os.Getenv("PATH"),
	}
	cmd.Stdin = bytes.NewReader(conf)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := cniResult{stdout: stdout.Bytes(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.code = ee.ExitCode()
	} else if err != nil {
		r.t.Fatalf("run plugin: %v", err)
	}
	return res
}

func (r runtime) add(containerID, cniArgs string) netip.Prefix {
	r.t.Helper()
	res := r.run("ADD", containerID, cniArgs)
	if res.code != 0 {
		r.t.Fatalf("ADD %s exited %d: %s %s", containerID, res.code, res.stdout, res.stderr)
	}
	var out struct {
		CNIVersion string `json:"cniVersion"`
		IPs        []struct {
			Address string `json:"address"`
		} `json:"ips"`
	}
	if err := json.Unmarshal(res.stdout, &out); err != nil || len(out.IPs) != 1 {
		r.t.Fatalf("ADD %s printed %s (%v), want one IP", containerID, res.stdout, err)
	}
	if out.CNIVersion != "1.0.0" {
		r.t.Fatalf("result cniVersion %s, want the config's 1.0.0", out.CNIVersion)
	}
	p, err := netip.ParsePrefix(out.IPs[0].Address)
	if err != nil || p.Bits() != 32 {
		r.t.Fatalf("ADD %s address %q, want a /32", containerID, out.IPs[0].Address)
	}
	return p
}

type cniError struct {
	Code uint   `json:"code"`
	Msg  string `json:"msg"`
}

func (r runtime) fail(command, containerID, cniArgs string) cniError {
	r.t.Helper()
	res := r.run(command, containerID, cniArgs)
	var e cniError
	if res.code == 0 || json.Unmarshal(res.stdout, &e) != nil || e.Code == 0 || e.Msg == "" {
		r.t.Fatalf("%s %s: exit %d, stdout %q; want a CNI error JSON and a non-zero exit", command, containerID, res.code, res.stdout)
	}
	return e
}

func newRuntime(t *testing.T, nodeName string) runtime {
	return runtime{t: t, conf: map[string]any{
		"cniVersion": "1.0.0", "name": "k8s-pod-network", "type": "gingham-ipam",
		"kubernetes": map[string]any{"kubeconfig": env.Kubeconfig}, "nodename": nodeName, "lock_file": filepath.Join(t.TempDir(), "ipam.lock"),
	}}
}

func setup(t *testing.T) (context.Context, *ipam.Allocator) {
	t.Helper()
	testenv.Need(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	wipe := func() {
		for _, obj := range []client.Object{&v1.IPPool{}, &v1.IPAMBlock{}, &v1.BlockAffinity{}, &v1.IPAMHandle{}, &corev1.Node{}} {
			if err := env.Client.DeleteAllOf(context.Background(), obj); err != nil {
				t.Fatalf("wipe %T: %v", obj, err)
			}
		}
		_ = env.Client.DeleteAllOf(context.Background(), &corev1.Pod{}, client.InNamespace("default"), client.GracePeriodSeconds(0))
	}
	wipe()
	t.Cleanup(wipe)
	return ctx, ipam.New(k8sstore.New(env.Client), ipam.Options{})
}

func createPool(t *testing.T, name, cidr string, blockSize int) {
	t.Helper()
	p := &v1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1.IPPoolSpec{CIDR: cidr, BlockSize: &blockSize}}
	if err := env.Client.Create(context.Background(), p); err != nil {
		t.Fatal(err)
	}
}

func TestPluginLifecycle(t *testing.T) {
	ctx, alloc := setup(t)
	createPool(t, "default-pool", "10.10.0.0/24", 26)
	rt := newRuntime(t, "node-a")
	podArgs := "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-1;K8S_POD_INFRA_CONTAINER_ID=c1"

	first := rt.add("c1", podArgs)
	if again := rt.add("c1", podArgs); again != first {
		t.Fatalf("repeated ADD gave %s, first gave %s", again, first)
	}
	al, err := alloc.AllocationOf(ctx, first.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if al.Handle != "k8s-pod-network.c1" || al.Attrs[ipam.AttrPodName] != "web-1" || al.Attrs[ipam.AttrNamespace] != "default" || al.Node() != "node-a" {
		t.Fatalf("allocation of %s = %+v; want handle k8s-pod-network.c1, pod default/web-1 on node-a", first, al)
	}
	if second := rt.add("c2", ""); second == first {
		t.Fatalf("two containers got %s", first)
	}

	// CHECK with and without the address in prevResult.
	rt.conf["prevResult"] = map[string]any{"cniVersion": "1.0.0", "ips": []map[string]any{{"address": first.String()}}}
	if res := rt.run("CHECK", "c1", podArgs); res.code != 0 {
		t.Fatalf("CHECK c1: exit %d %s", res.code, res.stdout)
	}
	rt.conf["prevResult"] = map[string]any{"cniVersion": "1.0.0", "ips": []map[string]any{{"address": "10.99.0.1/32"}}}
	if e := rt.fail("CHECK", "c1", podArgs); !strings.Contains(e.Msg, first.String()) {
		t.Fatalf("CHECK with a wrong prevResult: %+v", e)
	}
	delete(rt.conf, "prevResult")

	for i := range 2 {
		if res := rt.run("DEL", "c1", podArgs); res.code != 0 || len(bytes.TrimSpace(res.stdout)) != 0 {
			t.Fatalf("DEL #%d: exit %d, stdout %q", i+1, res.code, res.stdout)
		}
	}
	if _, err := alloc.AllocationOf(ctx, first.Addr()); err == nil {
		t.Fatalf("%s still allocated after DEL", first)
	}
	if res := rt.run("DEL", "never-added", ""); res.code != 0 {
		t.Fatalf("DEL of an unknown container: exit %d %s", res.code, res.stdout)
	}
	if e := rt.fail("CHECK", "c1", podArgs); e.Code != 3 {
		t.Fatalf("CHECK after DEL: %+v, want code 3 (unknown container)", e)
	}

	res := rt.run("VERSION", "", "")
	if res.code != 0 || !strings.Contains(string(res.stdout), `"1.0.0"`) {
		t.Fatalf("VERSION: exit %d %s", res.code, res.stdout)
	}
	rt.conf["cniVersion"] = "1.1.0"
	if res := rt.run("STATUS", "", ""); res.code != 0 {
		t.Fatalf("STATUS with a usable pool: exit %d %s", res.code, res.stdout)
	}
}

func TestPluginErrors(t *testing.T) {
	ctx, alloc := setup(t)
	createPool(t, "tiny", "10.20.0.0/30", 30)
	rt := newRuntime(t, "node-b")
	for i := range 4 {
		rt.add(fmt.Sprintf("fill%d", i), "")
	}
	e := rt.fail("ADD", "overflow", "")
	if e.Code != 100 || !strings.Contains(e.Msg, "pool exhausted") {
		t.Fatalf("ADD on a full pool: %+v, want code 100 'pool exhausted'", e)
	}
	if addrs, err := alloc.HandleAddrs(ctx, "k8s-pod-network.overflow"); err != nil || len(addrs) != 0 {
		t.Fatalf("failed ADD left %v (%v)", addrs, err)
	}
	var handles v1.IPAMHandleList
	if err := env.Client.List(ctx, &handles); err != nil || len(handles.Items) != 4 {
		t.Fatalf("%d handles after the failed ADD (%v), want the 4 of the filled pool", len(handles.Items), err)
	}

	tests := []struct {
		name     string
		mutate   func(map[string]any)
		wantCode uint
		wantMsg  string
	}{
		{"no kubeconfig outside a cluster", func(c map[string]any) { delete(c, "kubernetes") }, 7, "kubernetes.kubeconfig is required outside a cluster"},
		{"kubeconfig missing on disk", func(c map[string]any) { c["kubernetes"] = map[string]any{"kubeconfig": "/nonexistent/kubeconfig"} }, 7, "field kubernetes.kubeconfig"},
		{"no network name", func(c map[string]any) { delete(c, "name") }, 7, "network name"},
		{"API server unreachable", func(c map[string]any) { c["kubernetes"] = map[string]any{"kubeconfig": deadKubeconfig(t)} }, 11, "API server unreachable"},
		{"pool named in config missing", func(c map[string]any) {
			c["ipam"] = map[string]any{"type": "gingham-ipam", "ipv4_pools": []string{"nope"}}
		}, 101, "pool nope"},
		{"unknown ipam key named", func(c map[string]any) {
			c["ipam"] = map[string]any{"type": "gingham-ipam", "subnet": "usePodCidr"}
		}, 7, `"ipam.subnet"`},
		{"unknown top-level key named when run directly", func(c map[string]any) { c["datastore_type"] = "kubernetes" }, 7, `"datastore_type"`},
		{"no IPv4", func(c map[string]any) {
			c["ipam"] = map[string]any{"type": "gingham-ipam", "assign_ipv4": "false"}
		}, 7, "assign_ipv4"},
		{"IPv6 asked for", func(c map[string]any) {
			c["ipam"] = map[string]any{"type": "gingham-ipam", "assign_ipv6": "true"}
		}, 7, "assign_ipv6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRuntime(t, "node-b")
			tt.mutate(r.conf)
			e := r.fail("ADD", "bad", "")
			if e.Code != tt.wantCode || !strings.Contains(e.Msg, tt.wantMsg) {
				t.Fatalf("got %+v, want code %d and %q in the message", e, tt.wantCode, tt.wantMsg)
			}
		})
	}
}

// deadKubeconfig points at a port nothing listens on.
func deadKubeconfig(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "kubeconfig")
	doc := "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\nusers: [{name: u, user: {token: x}}]\n"
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPluginPoolAnnotationAndConcurrentAdds(t *testing.T) {
	ctx, _ := setup(t)
	createPool(t, "a-pool", "10.30.0.0/24", 26)
	createPool(t, "b-pool", "10.31.0.0/24", 26)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "pinned", Annotations: map[string]string{ipam.AnnotationIPv4Pools: `["b-pool"]`}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}},
	}
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	rt := newRuntime(t, "node-c")
	if got := rt.add("pinned", "K8S_POD_NAMESPACE=default;K8S_POD_NAME=pinned"); !netip.MustParsePrefix("10.31.0.0/24").Contains(got.Addr()) {
		t.Fatalf("annotated pod got %s, want an address of b-pool", got)
	}

	const n = 6
	got := make(chan netip.Prefix, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { got <- rt.add(fmt.Sprintf("par%d", i), "") })
	}
	wg.Wait()
	close(got)
	seen := map[netip.Prefix]bool{}
	for p := range got {
		if seen[p] {
			t.Fatalf("concurrent ADDs both got %s", p)
		}
		seen[p] = true
	}
}
