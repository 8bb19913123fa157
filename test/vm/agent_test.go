package vm

import (
	"context"
	"encoding/json"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/gingham-net/gingham/internal/testenv"
)

// agentsTimeout bounds the boot and the agents scenario.
const agentsTimeout = 8 * time.Minute

// AgentModules are the modules of the agents scenario: Modules plus the
// virtio NIC that reaches the host's API server.
var AgentModules = append(append([]string{}, Modules...), "virtio_pci", "virtio_net")

// guestAPIServer is how the guest's proxy and the host test agree on the
// API server's address; it mirrors agentsConfig in ./guest.
type guestAgentsConfig struct {
	APIServer string `json:"apiServer"` // host:port the guest dials (10.0.2.2:<port>)
	VIP       string `json:"vip"`       // address:port the guest's proxy listens on
}

// guestVIP is where agents and CNI plugins in the guest reach the API
// server: an address on the guest's router, proxied to the host.
const guestVIP = "10.96.0.1:6443"

// TestVMAgentsIPIPModes runs the real product in the VM: four gingham-node
// agents (two racks), talking to the host's kube-apiserver (etcd and
// kube-apiserver from bin/, CRDs installed) through qemu's user network,
// peering over BGP among themselves and with the racks' ToR (BIRD), with
// pods attached by the real gingham and gingham-ipam CNI plugins. The guest switches the IPPool's
// ipipMode through the API Always -> CrossSubnet -> Never and checks
// routes, pod flows and the underlay capture after each switch, with the
// agents' PIDs unchanged.
func TestVMAgentsIPIPModes(t *testing.T) {
	k := prereqs(t)
	env, reason, err := testenv.Start()
	if err != nil {
		t.Fatalf("start control plane: %v", err)
	}
	need(t, env != nil, reason)
	defer env.Stop()

	dir := t.TempDir()
	start := time.Now()
	// The product binaries are make build's (static, CGO_ENABLED=0), as
	// the lab tests use them.
	bin := filepath.Join(testenv.Root(), "bin")
	files := []File{
		{Src: filepath.Join(bin, "gingham-node"), Dst: "bin/gingham-node"},
		{Src: filepath.Join(bin, "gingham-cni"), Dst: "opt/cni/bin/gingham"},
		{Dst: "opt/cni/bin/gingham-ipam", Link: "gingham"},
		{Src: filepath.Join(dir, "kubeconfig"), Dst: "agents/kubeconfig"},
		{Src: filepath.Join(dir, "config.json"), Dst: "agents/config.json"},
	}
	for _, f := range files[:2] {
		_, err := os.Stat(f.Src)
		need(t, err == nil, f.Src+" missing (run make build)")
	}
	// The racks' ToR is BIRD, run from the host's package with its
	// libraries: Never needs a BGP path between the racks.
	_, err = os.Stat("/usr/sbin/bird")
	need(t, err == nil, "bird2 not installed (make tools)")
	bird, err := WithSharedObjects(File{Src: "/usr/sbin/bird", Dst: "bin/bird"})
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, bird...)
	guest := filepath.Join(dir, "guest")
	goBuild(t, guest, "./guest")

	// The guest reaches the host's loopback as 10.0.2.2; the apiserver's
	// certificate names 127.0.0.1, so the kubeconfig says so.
	host, err := url.Parse(env.Config.Host)
	if err != nil || host.Port() == "" {
		t.Fatalf("API server address %q: %v", env.Config.Host, err)
	}
	kc, err := clientcmd.LoadFromFile(env.Kubeconfig)
	if err != nil {
		t.Fatalf("read kubeconfig: %v", err)
	}
	for _, c := range kc.Clusters {
		c.Server = "https://" + guestVIP
		c.TLSServerName = "127.0.0.1"
	}
	if err := clientcmd.WriteToFile(*kc, files[3].Src); err != nil {
		t.Fatalf("write guest kubeconfig: %v", err)
	}
	cfg, _ := json.Marshal(guestAgentsConfig{APIServer: "10.0.2.2:" + host.Port(), VIP: guestVIP})
	if err := os.WriteFile(files[4].Src, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	mods, err := k.ModuleOrder(AgentModules)
	if err != nil {
		t.Fatal(err)
	}
	initrd := filepath.Join(dir, "initrd.cpio")
	if err := k.BuildInitramfs(initrd, guest, "/bin/busybox", mods, files...); err != nil {
		t.Fatal(err)
	}
	t.Logf("kernel %s, API server %s, binaries and initramfs built in %s", k.Release, env.Config.Host, time.Since(start).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), agentsTimeout)
	defer cancel()
	runGuest(t, func(console io.Writer) error {
		return BootWith(ctx, k, initrd, console, BootOptions{MemoryMiB: 2048, CPUs: 2, UserNet: true})
	})
}
