package deploy_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/gingham-net/gingham/cni/attach"
	"github.com/gingham-net/gingham/cni/ipamplugin"
)

// installCNI runs install-cni.sh as the DaemonSet's init container does:
// its environment from the DaemonSet (the ConfigMap's values resolved), a
// fake service account and host directories under a temporary root. It
// returns the host's net.d directory.
func installCNI(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	dirs := map[string]string{}
	for _, d := range []string{"src", "bin", "net.d", "sa"} {
		dirs[d] = filepath.Join(root, d)
		if err := os.MkdirAll(dirs[d], 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{"src/gingham": "#!bin", "src/gingham-ipam": "#!bin", "src/portmap": "#!bin",
		"sa/token": "token-1", "sa/ca.crt": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cm := find[corev1.ConfigMap](t, "cni-config.yaml", "ConfigMap")
	ds := find[appsv1.DaemonSet](t, "daemonset.yaml", "DaemonSet")
	env := []string{"PATH=" + os.Getenv("PATH"), "BIN_SRC=" + dirs["src"], "HOST_BIN=" + dirs["bin"], "HOST_NET=" + dirs["net.d"],
		"SA_DIR=" + dirs["sa"], "KUBERNETES_SERVICE_HOST=10.96.0.1", "KUBERNETES_SERVICE_PORT=443"}
	for _, e := range ds.Spec.Template.Spec.InitContainers[0].Env {
		switch {
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+e.Value)
		case e.ValueFrom.ConfigMapKeyRef != nil:
			v, ok := cm.Data[e.ValueFrom.ConfigMapKeyRef.Key]
			if !ok {
				t.Fatalf("install-cni's %s names ConfigMap key %q, which gingham-config lacks", e.Name, e.ValueFrom.ConfigMapKeyRef.Key)
			}
			env = append(env, e.Name+"="+v)
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName":
			env = append(env, e.Name+"=n1")
		default:
			t.Fatalf("install-cni env %s: unhandled source %+v", e.Name, e.ValueFrom)
		}
	}
	cmd := exec.Command("sh", "install-cni.sh")
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("install-cni.sh: %v\n%s", err, out)
	}
	for _, b := range []string{"gingham", "gingham-ipam", "portmap"} {
		if fi, err := os.Stat(filepath.Join(dirs["bin"], b)); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("binary %s not installed executable: %v", b, err)
		}
	}
	return dirs["net.d"]
}

// TestInstallCNI renders the shipped conflist exactly as install-cni.sh
// does, loads it as libcni does, and parses gingham's entry with both
// plugins' configuration loaders: each loader refuses keys it does not
// read, and every key of the shipped entry must be read, with the rendered
// value, by at least one of them. A key added to the manifest without code
// reading it, or spelt differently from the code, fails here.
func TestInstallCNI(t *testing.T) {
	netd := installCNI(t)
	list, err := libcni.ConfListFromFile(filepath.Join(netd, "10-gingham.conflist"))
	if err != nil {
		t.Fatal(err)
	}
	if list.CNIVersion != "1.1.0" || list.Name != "k8s-pod-network" || len(list.Plugins) != 2 || list.Plugins[1].Network.Type != "portmap" {
		t.Fatalf("conflist %s: version %s, %d plugins; want k8s-pod-network 1.1.0 with gingham and portmap", list.Name, list.CNIVersion, len(list.Plugins))
	}
	// What libcni hands the plugin: its entry with the list's name and version.
	plugin, err := libcni.InjectConf(list.Plugins[0], map[string]any{"name": list.Name, "cniVersion": list.CNIVersion})
	if err != nil {
		t.Fatal(err)
	}
	ac, err := attach.ParseConf(plugin.Bytes)
	if err != nil {
		t.Fatalf("gingham refuses the shipped configuration: %v", err)
	}
	ic, cerr := ipamplugin.LoadConf(plugin.Bytes)
	if cerr != nil {
		t.Fatalf("gingham-ipam refuses the shipped configuration: %v", cerr)
	}
	// read maps each key path to what the loaders made of it.
	read := map[string][]any{
		"cniVersion":            {ac.CNIVersion, ic.CNIVersion},
		"name":                  {ac.Name, ic.Name},
		"type":                  {ac.Type},
		"log_level":             {ac.LogLevel, ic.LogLevel},
		"log_file_path":         {ac.LogFilePath, ic.LogFilePath},
		"nodename":              {ac.Nodename, ic.Nodename},
		"mtu":                   {float64(ac.MTU)},
		"state_dir":             {ac.StateDir},
		"ipam.type":             {ac.IPAM.Type, ic.IPAM.Type},
		"kubernetes.kubeconfig": {ac.Kubeconfig, ic.Kubeconfig},
	}
	var doc map[string]any
	if err := json.Unmarshal(plugin.Bytes, &doc); err != nil {
		t.Fatal(err)
	}
	leaves := map[string]any{}
	flatten("", doc, leaves)
	for _, path := range slices.Sorted(maps.Keys(leaves)) {
		got, ok := read[path]
		if !ok {
			t.Errorf("key %s of the shipped conflist: no loader is checked for it here (read it in cni/ and add it to this test)", path)
			continue
		}
		for i, v := range got {
			if fmt.Sprint(v) != fmt.Sprint(leaves[path]) {
				t.Errorf("key %s = %v in the conflist, loader %d read %v", path, leaves[path], i, v)
			}
		}
	}
	if ac.Kubeconfig != "/etc/cni/net.d/gingham-kubeconfig" || ac.Nodename != "n1" {
		t.Errorf("placeholders: kubeconfig %q, nodename %q", ac.Kubeconfig, ac.Nodename)
	}

	// The kubeconfig beside it: the service account's token, mode 0600.
	kc := filepath.Join(netd, "gingham-kubeconfig")
	fi, err := os.Stat(kc)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode %o, want 600 (it holds a token)", fi.Mode().Perm())
	}
	cfg, err := clientcmd.LoadFromFile(kc)
	if err != nil {
		t.Fatalf("kubeconfig written by install-cni does not load: %v", err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if ctx == nil || cfg.AuthInfos[ctx.AuthInfo] == nil || cfg.AuthInfos[ctx.AuthInfo].Token != "token-1" ||
		cfg.Clusters[ctx.Cluster] == nil || cfg.Clusters[ctx.Cluster].Server != "https://10.96.0.1:443" {
		t.Errorf("kubeconfig %+v: want the service account token and the in-cluster server", cfg)
	}
}

func flatten(prefix string, v any, out map[string]any) {
	m, ok := v.(map[string]any)
	if !ok {
		out[strings.TrimSuffix(prefix, ".")] = v
		return
	}
	for k, vv := range m {
		flatten(prefix+k+".", vv, out)
	}
}
