// Package testenv starts the real control plane for integration tests: etcd
// and kube-apiserver (built by `make tools` into bin/) through controller-
// runtime's envtest, with gingham's CRDs from deploy/crds installed.
//
// When the binaries are missing a test is skipped, unless
// GINGHAM_TEST_REQUIRE=1 (set by `make test`), where it fails: `make test`
// never counts a skipped integration test as passing.
package testenv

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/gingham-net/gingham/internal/kube"
)

// Env is a running control plane.
type Env struct {
	Config     *rest.Config
	Client     client.Client
	Kube       kubernetes.Interface
	Kubeconfig string // path of a kubeconfig file for binaries under test
	env        *envtest.Environment
}

// Root is the repository root (found from this file's location).
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Scheme knows the core, coordination and gingham.dev/v1 types.
func Scheme() *k8sruntime.Scheme { return kube.Scheme() }

// Required reports whether missing prerequisites must fail tests.
func Required() bool { return os.Getenv("GINGHAM_TEST_REQUIRE") == "1" }

// Start starts a control plane for the whole test binary; call it from
// TestMain and Stop it after m.Run. It returns nil and a reason when the
// binaries are missing and not required.
func Start() (*Env, string, error) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join(Root(), "bin")
	}
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(assets, b)); err != nil {
			return nil, "control plane binaries missing in " + assets + " (run make tools)", nil
		}
	}
	e := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(Root(), "deploy", "crds")},
		ErrorIfCRDPathMissing: true,
		Scheme:                Scheme(),
	}
	cfg, err := e.Start()
	if err != nil {
		return nil, "", err
	}
	c, err := client.New(cfg, client.Options{Scheme: e.Scheme})
	if err != nil {
		_ = e.Stop()
		return nil, "", err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		_ = e.Stop()
		return nil, "", err
	}
	env := &Env{Config: cfg, Client: c, Kube: kube, env: e}
	if env.Kubeconfig, err = writeKubeconfig(e); err != nil {
		_ = e.Stop()
		return nil, "", err
	}
	return env, "", nil
}

// Stop stops the control plane.
func (e *Env) Stop() {
	if e == nil {
		return
	}
	_ = os.Remove(e.Kubeconfig)
	_ = e.env.Stop()
}

// Main is the TestMain body of a package whose tests share one control
// plane: it sets *env, runs the tests and stops the control plane. When the
// binaries are missing, tests that call Need skip or fail (see package doc).
func Main(m *testing.M, env **Env) {
	e, reason, err := Start()
	if err != nil {
		println("testenv: start control plane:", err.Error())
		os.Exit(1)
	}
	skipReason = reason
	*env = e
	code := m.Run()
	e.Stop()
	os.Exit(code)
}

var skipReason string

// Need ends t unless the control plane is running.
func Need(t testing.TB, e *Env) {
	t.Helper()
	if e != nil {
		return
	}
	if Required() {
		t.Fatalf("integration test needs the real API server: %s", skipReason)
	}
	t.Skipf("integration test needs the real API server: %s", skipReason)
}

func writeKubeconfig(e *envtest.Environment) (string, error) {
	user, err := e.ControlPlane.AddUser(envtest.User{Name: "gingham-test", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return "", err
	}
	data, err := user.KubeConfig()
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp("", "gingham-kubeconfig-*")
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		return "", err
	}
	return f.Name(), nil
}
