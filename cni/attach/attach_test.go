package attach_test

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gingham-net/gingham/cni/attach/attachtest"
	"github.com/gingham-net/gingham/felix"
	"github.com/gingham-net/gingham/internal/netlinkx"
	"github.com/gingham-net/gingham/internal/netns"
	"github.com/gingham-net/gingham/internal/netns/netnstest"
	"github.com/gingham-net/gingham/internal/testenv"
)

// env is the real API server of the tests that need one (testenv.Need).
var env *testenv.Env

func TestMain(m *testing.M) {
	attachtest.ServeIfPlugin()
	testenv.Main(m, &env)
}

func TestHostVethName(t *testing.T) {
	// sha1("default.nginx") = 0f3a6bf4a9c...: the name must match the agent's.
	got := felix.HostVethName("cali", "default", "nginx")
	if len(got) != 15 || !strings.HasPrefix(got, "cali") {
		t.Fatalf("HostVethName = %q", got)
	}
	if felix.HostVethName("cali", "default", "nginx") != got || felix.HostVethName("cali", "default", "nginy") == got {
		t.Fatal("HostVethName is not a function of namespace and pod")
	}
}

func conf(t *testing.T, extra string) []byte {
	dir := t.TempDir()
	return []byte(fmt.Sprintf(`{"cniVersion":"1.0.0","name":"k8s-pod-network","type":"gingham","state_dir":%q,%s
		"ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":"10.244.0.0/26"}]]}}`, dir, extra, filepath.Join(dir, "ipam")))
}

func TestPrivilegedAddCheckDel(t *testing.T) {
	netnstest.Privileged(t)
	host := netnstest.New(t, "h")
	pod := netnstest.New(t, "p")
	c := conf(t, `"mtu":1400,`)
	plugin := attachtest.Self(host)
	call := attachtest.Call{ContainerID: "c1", Netns: pod.Path(), IfName: "eth0", Args: attachtest.PodArgs("default", "web"), Conf: c}

	call.Command = "ADD"
	out, err := plugin.Run(call)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		IPs []struct{ Address string } `json:"ips"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.IPs) != 1 {
		t.Fatalf("ADD result %s: %v", out, err)
	}
	podIP := netip.MustParsePrefix(res.IPs[0].Address).Addr()
	vethName := felix.HostVethName("cali", "default", "web")

	hh, err := netlinkx.Open(host.Fd())
	if err != nil {
		t.Fatal(err)
	}
	defer hh.Close()
	hl, err := hh.LinkByName(vethName)
	if err != nil {
		t.Fatal(err)
	}
	if hl.MAC.String() != "ee:ee:ee:ee:ee:ee" || hl.MTU != 1400 || !hl.Up || hl.Alias != "gingham/k8s-pod-network/c1/eth0" {
		t.Errorf("host veth = %+v", hl)
	}
	routes, err := hh.RouteList(netlinkx.RouteFilter{LinkIndex: hl.Index})
	if err != nil || len(routes) != 1 || routes[0].Dst != netip.PrefixFrom(podIP, 32) || routes[0].Protocol != 96 || routes[0].Scope != netlinkx.ScopeLink {
		t.Errorf("host routes = %+v, %v", routes, err)
	}
	for _, key := range []string{"conf/" + vethName + "/proxy_arp", "neigh/" + vethName + "/proxy_delay", "conf/" + vethName + "/forwarding"} {
		want := "1"
		if strings.HasPrefix(key, "neigh") {
			want = "0"
		}
		if got := sysctlIn(t, host, "net/ipv4/"+key); got != want {
			t.Errorf("%s = %s, want %s", key, got, want)
		}
	}
	podRoutes := ipOut(t, pod, "route", "show")
	for _, want := range []string{"default via 169.254.1.1 dev eth0", "169.254.1.1 dev eth0 scope link"} {
		if !strings.Contains(podRoutes, want) {
			t.Errorf("pod routes lack %q:\n%s", want, podRoutes)
		}
	}
	if a := ipOut(t, pod, "addr", "show", "eth0"); !strings.Contains(a, podIP.String()+"/32") {
		t.Errorf("pod address:\n%s", a)
	}

	// CHECK passes on the result ADD gave, and fails once a route is gone.
	check := call
	check.Command = "CHECK"
	check.Conf = withPrev(t, c, out)
	if _, err := plugin.Run(check); err != nil {
		t.Fatalf("CHECK: %v", err)
	}
	ipOut(t, pod, "route", "del", "default")
	if _, err := plugin.Run(check); err == nil {
		t.Fatal("CHECK passed without the default route")
	}

	// DEL twice: both succeed, veth and allocation gone.
	del := call
	del.Command = "DEL"
	for i := 0; i < 2; i++ {
		if _, err := plugin.Run(del); err != nil {
			t.Fatalf("DEL %d: %v", i, err)
		}
	}
	if _, err := hh.LinkByName(vethName); err == nil {
		t.Error("host veth survived DEL")
	}
	// host-local keeps one file per allocation: it must be gone.
	var cfg struct {
		StateDir string `json:"state_dir"`
	}
	_ = json.Unmarshal(c, &cfg)
	if _, err := os.Stat(filepath.Join(cfg.StateDir, "ipam", "k8s-pod-network", podIP.String())); !os.IsNotExist(err) {
		t.Errorf("allocation of %s not released: %v", podIP, err)
	}
}

func TestPrivilegedAddFailureReleasesAddress(t *testing.T) {
	t.Log("reliability: does: runs the gingham plugin's ADD into a pod netns whose eth0 is taken (failing after IPAM ADD) and checks the delegated host-local allocation is released and the pod's own eth0 left alone; an ADD into a netns that does not exist takes nothing")
	netnstest.Privileged(t)
	host := netnstest.New(t, "h")
	pod := netnstest.New(t, "p")
	ipOut(t, pod, "link", "add", "eth0", "type", "veth", "peer", "name", "other")
	c := conf(t, "")
	plugin := attachtest.Self(host)
	var cfg struct {
		StateDir string `json:"state_dir"`
	}
	_ = json.Unmarshal(c, &cfg)
	allocated := func() (n int) {
		ents, _ := os.ReadDir(filepath.Join(cfg.StateDir, "ipam", "k8s-pod-network"))
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "10.") {
				n++
				t.Errorf("allocation %s leaked after failed ADD", e.Name())
			}
		}
		return n
	}

	call := attachtest.Call{Command: "ADD", ContainerID: "c1", Netns: pod.Path(), IfName: "eth0", Args: attachtest.PodArgs("default", "x"), Conf: c}
	if _, err := plugin.Run(call); err == nil {
		t.Fatal("ADD with the pod's eth0 taken succeeded")
	}
	leaked := allocated()
	if out := ipOut(t, pod, "link", "show", "eth0"); !strings.Contains(out, "eth0@other") {
		t.Errorf("the pod's own eth0 after the failed ADD:\n%s", out)
	}
	if _, err := plugin.Run(attachtest.Call{Command: "ADD", ContainerID: "c2", Netns: "/run/netns/does-not-exist", IfName: "eth0",
		Args: attachtest.PodArgs("default", "y"), Conf: c}); err == nil {
		t.Fatal("ADD into a missing netns succeeded")
	}
	leaked += allocated()
	t.Logf("reliability: figure: allocations left after the failed ADDs: %d", leaked)
}

// TestPrivilegedGC: GC removes this network's host veths whose attachment
// the runtime no longer lists, keeps the listed ones and every veth that is
// not ours, and hands the valid list to the IPAM plugin.
func TestPrivilegedGC(t *testing.T) {
	netnstest.Privileged(t)
	host := netnstest.New(t, "h")
	c := conf(t, "")
	add := attachtest.Self(host)
	for _, p := range []struct{ id, pod string }{{"c1", "keep"}, {"c2", "gone"}} {
		pod := netnstest.New(t, "p")
		call := attachtest.Call{Command: "ADD", ContainerID: p.id, Netns: pod.Path(), IfName: "eth0", Args: attachtest.PodArgs("default", p.pod), Conf: c}
		if _, err := add.Run(call); err != nil {
			t.Fatal(err)
		}
	}
	// Not ours: our prefix but no alias, and an alias of another network.
	ipOut(t, host, "link", "add", "cali0f0reign00", "type", "veth", "peer", "name", "peer0")
	ipOut(t, host, "link", "add", "cali0f0reign01", "type", "veth", "peer", "name", "peer1")
	ipOut(t, host, "link", "set", "cali0f0reign01", "alias", "gingham/other-network/c2/eth0")

	// The IPAM plugin records what GC handed it.
	ipamDir := t.TempDir()
	got := filepath.Join(ipamDir, "gc-stdin")
	script := "#!/bin/sh\n[ \"$CNI_COMMAND\" = GC ] || exit 1\ncat > " + got + "\n"
	if err := os.WriteFile(filepath.Join(ipamDir, "fake-ipam"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(c, &m); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(t.TempDir(), "log", "cni.log")
	m["cniVersion"], m["ipam"] = "1.1.0", map[string]any{"type": "fake-ipam"}
	m["log_file_path"], m["log_level"] = logFile, "info"
	gcRunner := attachtest.Self(host)
	gcRunner.Path = ipamDir

	noList, _ := json.Marshal(m)
	if _, err := gcRunner.Run(attachtest.Call{Command: "GC", Conf: noList}); err == nil || !strings.Contains(err.Error(), "valid-attachments") {
		t.Fatalf("GC without a valid list: %v, want a refusal", err)
	}
	m["cni.dev/valid-attachments"] = []map[string]string{{"containerID": "c1", "ifname": "eth0"}}
	gcConf, _ := json.Marshal(m)
	if _, err := gcRunner.Run(attachtest.Call{Command: "GC", Conf: gcConf}); err != nil {
		t.Fatalf("GC: %v", err)
	}

	hh, err := netlinkx.Open(host.Fd())
	if err != nil {
		t.Fatal(err)
	}
	defer hh.Close()
	for name, want := range map[string]bool{
		felix.HostVethName("cali", "default", "keep"): true,
		felix.HostVethName("cali", "default", "gone"): false,
		"cali0f0reign00": true, "cali0f0reign01": true,
	} {
		if _, err := hh.LinkByName(name); (err == nil) != want {
			t.Errorf("veth %s present = %v, want %v", name, err == nil, want)
		}
	}
	b, err := os.ReadFile(got)
	if err != nil {
		t.Fatalf("IPAM plugin got no GC: %v", err)
	}
	logged, err := os.ReadFile(logFile)
	if err != nil || !strings.Contains(string(logged), `"msg":"removed stale veth"`) || !strings.Contains(string(logged), "gingham/k8s-pod-network/c2/eth0") {
		t.Errorf("log_file_path %s: %v\n%s", logFile, err, logged)
	}
	var ipamConf struct {
		Valid []map[string]string `json:"cni.dev/valid-attachments"`
	}
	if err := json.Unmarshal(b, &ipamConf); err != nil || len(ipamConf.Valid) != 1 || ipamConf.Valid[0]["containerID"] != "c1" {
		t.Errorf("IPAM GC stdin %s (%v), want the valid list", b, err)
	}
}

func withPrev(t *testing.T, conf, result []byte) []byte {
	var m map[string]any
	if err := json.Unmarshal(conf, &m); err != nil {
		t.Fatal(err)
	}
	var r any
	if err := json.Unmarshal(result, &r); err != nil {
		t.Fatal(err)
	}
	m["prevResult"] = r
	b, _ := json.Marshal(m)
	return b
}

func ipOut(t *testing.T, ns *netns.NS, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"-n", netnstest.Name(ns)}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %v: %v: %s", args, err, out)
	}
	return string(out)
}

func sysctlIn(t *testing.T, ns *netns.NS, key string) string {
	t.Helper()
	var v string
	if err := ns.Do(func() error {
		b, err := os.ReadFile("/proc/sys/" + key)
		v = strings.TrimSpace(string(b))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return v
}
