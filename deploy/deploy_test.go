// Package deploy_test checks the manifests of deploy/ against the real API
// server: every object is created (strict field validation), the CNI
// conflist renders to the plugin gingham with IPAM gingham-ipam, the
// DaemonSet passes every GINGHAM_* setting of node/config.go, and the RBAC
// grants gingham-node what it needs and nothing more (SubjectAccessReviews).
package deploy_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/gingham-net/gingham/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// manifests are deploy's YAML files (but the kustomization), the namespace
// first.
func manifests(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"*.yaml", "examples/*.yaml"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range m {
			if f != "kustomization.yaml" { // kustomize's, not an API object
				files = append(files, f)
			}
		}
	}
	sort.SliceStable(files, func(i, j int) bool { return files[i] == "namespace.yaml" && files[j] != "namespace.yaml" })
	if len(files) < 6 {
		t.Fatalf("only %d manifests found: %v", len(files), files)
	}
	return files
}

func decode(t *testing.T, file string) []*unstructured.Unstructured {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out
			}
			t.Fatalf("%s: %v", file, err)
		}
		if len(m) > 0 {
			out = append(out, &unstructured.Unstructured{Object: m})
		}
	}
}

func find[T any](t *testing.T, file, kind string) *T {
	t.Helper()
	for _, u := range decode(t, file) {
		if u.GetKind() == kind {
			var v T
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &v); err != nil {
				t.Fatal(err)
			}
			return &v
		}
	}
	t.Fatalf("%s has no %s", file, kind)
	return nil
}

// TestManifestsCreateInAPIServer creates every object of deploy/ and
// deploy/examples/ with strict field validation (a misspelt field fails).
func TestManifestsCreateInAPIServer(t *testing.T) {
	testenv.Need(t, env)
	ctx := context.Background()
	created := 0
	for _, file := range manifests(t) {
		var objs []*unstructured.Unstructured
		for _, u := range decode(t, file) {
			if err := env.Client.Create(ctx, u, client.FieldValidation("Strict")); err != nil {
				t.Errorf("%s: create %s %q: %v", file, u.GetKind(), u.GetName(), err)
				continue
			}
			objs = append(objs, u)
			created++
		}
		// The examples are alternative topologies: remove one before the next.
		if strings.HasPrefix(file, "examples/") {
			for _, u := range objs {
				if err := env.Client.Delete(ctx, u); err != nil {
					t.Errorf("%s: delete %s %q: %v", file, u.GetKind(), u.GetName(), err)
				}
			}
		}
	}
	t.Logf("created %d objects", created)
	// The CRDs were installed from deploy/crds by the test environment.
	crds, _ := filepath.Glob("crds/*.yaml")
	if len(crds) != 8 {
		t.Errorf("deploy/crds has %d CRDs, want 8", len(crds))
	}
}

// agentSettings are the GINGHAM_* variables node/config.go reads.
func agentSettings(t *testing.T) []string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "node", "config.go"))
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	for _, m := range regexp.MustCompile(`env[A-Za-z]*\("(GINGHAM_[A-Z0-9_]+)"`).FindAllStringSubmatch(string(src), -1) {
		set[m[1]] = true
	}
	var out []string
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	if len(out) < 15 {
		t.Fatalf("found only %d settings in node/config.go: %v", len(out), out)
	}
	return out
}

// TestDaemonSet checks the shape the issue asks for.
func TestDaemonSet(t *testing.T) {
	ds := find[appsv1.DaemonSet](t, "daemonset.yaml", "DaemonSet")
	spec := ds.Spec.Template.Spec
	if ds.Name != "gingham-node" || ds.Namespace != "gingham-system" || spec.ServiceAccountName != "gingham-node" {
		t.Errorf("name %s/%s, service account %q", ds.Namespace, ds.Name, spec.ServiceAccountName)
	}
	if !spec.HostNetwork {
		t.Error("hostNetwork is not set")
	}
	if u := ds.Spec.UpdateStrategy.RollingUpdate; u == nil || u.MaxUnavailable == nil || u.MaxUnavailable.IntValue() != 1 {
		t.Errorf("maxUnavailable is not 1: %+v", ds.Spec.UpdateStrategy)
	}
	if len(spec.InitContainers) != 1 || spec.InitContainers[0].Name != "install-cni" {
		t.Fatalf("init containers = %+v, want install-cni", spec.InitContainers)
	}
	mounts := map[string]bool{}
	for _, m := range spec.InitContainers[0].VolumeMounts {
		mounts[m.MountPath] = true
	}
	if !mounts["/host/opt/cni/bin"] || !mounts["/host/etc/cni/net.d"] {
		t.Errorf("install-cni mounts %v, want /host/opt/cni/bin and /host/etc/cni/net.d", mounts)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("containers = %d, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]
	if c.SecurityContext == nil || c.SecurityContext.Privileged == nil || !*c.SecurityContext.Privileged {
		t.Error("gingham-node is not privileged")
	}
	for name, probe := range map[string]*corev1.Probe{"/livez": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != name || probe.HTTPGet.Port.IntValue() != 9099 {
			t.Errorf("probe %s = %+v, want HTTP GET %s on 9099", name, probe, name)
		}
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	for _, s := range agentSettings(t) {
		if _, ok := env[s]; !ok {
			t.Errorf("DaemonSet does not pass %s (read by node/config.go)", s)
		}
	}
	for k := range env {
		if strings.HasPrefix(k, "GINGHAM_") && !strings.Contains(strings.Join(agentSettings(t), " "), k) && k != "GINGHAM_NAMESPACE" {
			t.Errorf("DaemonSet passes %s, which node/config.go does not read", k)
		}
	}
	if env["GINGHAM_IPV4POOL_CIDR"].Value == "" || env["GINGHAM_IPV4POOL_IPIP"].Value == "" {
		t.Error("default pool settings GINGHAM_IPV4POOL_CIDR/IPIP are empty")
	}
	if env["GINGHAM_NODENAME"].ValueFrom == nil || env["GINGHAM_NODENAME"].ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
		t.Error("GINGHAM_NODENAME is not taken from spec.nodeName")
	}
	// Empty AS and RR cluster ID: administrators' Node annotations rule.
	for _, k := range []string{"GINGHAM_AS", "GINGHAM_RR_CLUSTER_ID", "GINGHAM_IP"} {
		if e, ok := env[k]; !ok || e.Value != "" || e.ValueFrom != nil {
			t.Errorf("%s = %+v, want listed and empty", k, e)
		}
	}
	if env["GINGHAM_IP_AUTODETECTION_METHOD"].Value != "first-found" {
		t.Errorf("GINGHAM_IP_AUTODETECTION_METHOD = %q, want first-found", env["GINGHAM_IP_AUTODETECTION_METHOD"].Value)
	}
	// /metrics on the node's address at the port the container declares.
	if v := env["GINGHAM_METRICS_ADDR"].Value; v != ":9091" {
		t.Errorf("GINGHAM_METRICS_ADDR = %q, want :9091", v)
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != "metrics" || c.Ports[0].ContainerPort != 9091 {
		t.Errorf("ports %+v, want metrics 9091", c.Ports)
	}
	// The CNI kubeconfig the agent refreshes is the one install-cni writes,
	// on a read-write mount.
	if v := env["GINGHAM_CNI_KUBECONFIG"].Value; v != "/etc/cni/net.d/gingham-kubeconfig" {
		t.Errorf("GINGHAM_CNI_KUBECONFIG = %q", v)
	}
	rw := false
	for _, m := range c.VolumeMounts {
		rw = rw || (m.MountPath == "/etc/cni/net.d" && !m.ReadOnly)
	}
	if !rw {
		t.Error("/etc/cni/net.d is not mounted read-write into gingham-node")
	}
}

// rbacTarget names what a ResourceAttributes asks about, for log lines.
func rbacTarget(a authzv1.ResourceAttributes) string {
	r := a.Resource
	if a.Group != "" {
		r += "." + a.Group
	}
	if a.Subresource != "" {
		r += "/" + a.Subresource
	}
	if a.Name != "" {
		r += " " + a.Name
	}
	if a.Namespace != "" {
		r += " in namespace " + a.Namespace
	} else {
		r += " (cluster-wide)"
	}
	return r
}

// TestRBAC asks the API server whether gingham-node's service account may
// do what it needs, and may not do the rest.
func TestRBAC(t *testing.T) {
	t.Log("reliability: does: asks the API server (SubjectAccessReview) whether gingham-node's service account may do each thing it needs and none of the rest: secrets only by name in its namespace, no pod, node, pool or peer writes, no RBAC escalation")
	testenv.Need(t, env)
	ctx := context.Background()
	// The RBAC objects must exist; creating them again is harmless.
	for _, file := range []string{"namespace.yaml", "rbac.yaml"} {
		for _, u := range decode(t, file) {
			_ = env.Client.Create(ctx, u)
		}
	}
	const ns = "gingham-system"
	tests := []struct {
		name    string
		attrs   authzv1.ResourceAttributes
		allowed bool
	}{
		{"watch nodes", authzv1.ResourceAttributes{Verb: "watch", Resource: "nodes"}, true},
		{"patch node annotations", authzv1.ResourceAttributes{Verb: "patch", Resource: "nodes", Name: "n1"}, true},
		{"list pods", authzv1.ResourceAttributes{Verb: "list", Resource: "pods"}, true},
		{"list namespaces", authzv1.ResourceAttributes{Verb: "list", Resource: "namespaces"}, true},
		{"annotate pod through status", authzv1.ResourceAttributes{Verb: "patch", Resource: "pods", Subresource: "status", Namespace: "default", Name: "p"}, true},
		{"watch ippools", authzv1.ResourceAttributes{Verb: "watch", Group: "gingham.dev", Resource: "ippools"}, true},
		{"create the default ippool", authzv1.ResourceAttributes{Verb: "create", Group: "gingham.dev", Resource: "ippools"}, true},
		{"watch bgppeers", authzv1.ResourceAttributes{Verb: "watch", Group: "gingham.dev", Resource: "bgppeers"}, true},
		{"get bgpconfigurations", authzv1.ResourceAttributes{Verb: "get", Group: "gingham.dev", Resource: "bgpconfigurations", Name: "default"}, true},
		{"get ipamconfigurations", authzv1.ResourceAttributes{Verb: "get", Group: "gingham.dev", Resource: "ipamconfigurations", Name: "default"}, true},
		{"update ipamblocks", authzv1.ResourceAttributes{Verb: "update", Group: "gingham.dev", Resource: "ipamblocks"}, true},
		{"delete ipamblocks", authzv1.ResourceAttributes{Verb: "delete", Group: "gingham.dev", Resource: "ipamblocks"}, true},
		{"create blockaffinities", authzv1.ResourceAttributes{Verb: "create", Group: "gingham.dev", Resource: "blockaffinities"}, true},
		{"delete ipamhandles", authzv1.ResourceAttributes{Verb: "delete", Group: "gingham.dev", Resource: "ipamhandles"}, true},
		{"create own node status", authzv1.ResourceAttributes{Verb: "create", Group: "gingham.dev", Resource: "ginghamnodestatuses"}, true},
		{"update node status subresource", authzv1.ResourceAttributes{Verb: "update", Group: "gingham.dev", Resource: "ginghamnodestatuses", Subresource: "status", Name: "n1"}, true},
		{"GC lease in own namespace", authzv1.ResourceAttributes{Verb: "update", Group: "coordination.k8s.io", Resource: "leases", Namespace: ns, Name: "gingham-ipam-gc"}, true},
		{"read BGP password secret", authzv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: ns, Name: "bgp-passwords"}, true},
		{"watch BGP password secret by name", authzv1.ResourceAttributes{Verb: "watch", Resource: "secrets", Namespace: ns, Name: "bgp-passwords"}, true},

		{"no secrets in other namespaces", authzv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: "kube-system", Name: "bgp-passwords"}, false},
		{"no other secrets in own namespace", authzv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: ns, Name: "other"}, false},
		{"no listing all secrets of own namespace", authzv1.ResourceAttributes{Verb: "list", Resource: "secrets", Namespace: ns}, false},
		{"no secrets cluster-wide", authzv1.ResourceAttributes{Verb: "list", Resource: "secrets"}, false},
		{"no deleting ippools", authzv1.ResourceAttributes{Verb: "delete", Group: "gingham.dev", Resource: "ippools", Name: "default-ipv4-ippool"}, false},
		{"no updating ippools", authzv1.ResourceAttributes{Verb: "update", Group: "gingham.dev", Resource: "ippools"}, false},
		{"no writing bgppeers", authzv1.ResourceAttributes{Verb: "create", Group: "gingham.dev", Resource: "bgppeers"}, false},
		{"no writing bgpconfigurations", authzv1.ResourceAttributes{Verb: "update", Group: "gingham.dev", Resource: "bgpconfigurations"}, false},
		{"no deleting node statuses", authzv1.ResourceAttributes{Verb: "delete", Group: "gingham.dev", Resource: "ginghamnodestatuses"}, false},
		{"no deleting nodes", authzv1.ResourceAttributes{Verb: "delete", Resource: "nodes"}, false},
		{"no updating pods", authzv1.ResourceAttributes{Verb: "update", Resource: "pods", Namespace: "default"}, false},
		{"no creating pods", authzv1.ResourceAttributes{Verb: "create", Resource: "pods", Namespace: "default"}, false},
		{"no leases elsewhere", authzv1.ResourceAttributes{Verb: "update", Group: "coordination.k8s.io", Resource: "leases", Namespace: "kube-system"}, false},
		{"no RBAC escalation", authzv1.ResourceAttributes{Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Logf("reliability: does: asks whether gingham-node may %s %s (want allowed=%v)", tc.attrs.Verb, rbacTarget(tc.attrs), tc.allowed)
			sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
				User:               "system:serviceaccount:" + ns + ":gingham-node",
				Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
				ResourceAttributes: &tc.attrs,
			}}
			got, err := env.Kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("reliability: figure: allowed: %v", got.Status.Allowed)
			if got.Status.Allowed != tc.allowed {
				t.Errorf("%+v: allowed = %v, want %v (%s)", tc.attrs, got.Status.Allowed, tc.allowed, got.Status.Reason)
			}
		})
	}
}
