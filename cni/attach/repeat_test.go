package attach_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/cni/attach/attachtest"
	"github.com/gingham-net/gingham/felix"
	"github.com/gingham-net/gingham/internal/netlinkx"
	"github.com/gingham-net/gingham/internal/netns"
	"github.com/gingham-net/gingham/internal/netns/netnstest"
	"github.com/gingham-net/gingham/internal/testenv"
	"github.com/gingham-net/gingham/ipam"
	"github.com/gingham-net/gingham/ipam/k8sstore"
	"github.com/gingham-net/gingham/test/labnet"
)

// apiLab is a fake host namespace whose gingham plugin delegates to the real
// gingham-ipam (this test binary under that name), reaching the real API
// server through a proxy inside the namespace. The host has an uplink and a
// default route through it, as a node does, so the host veths answer the
// pods' ARP for 169.254.1.1 and pods are reachable from the host.
type apiLab struct {
	host   *netns.NS
	hh     *netlinkx.Handle
	plugin attachtest.Runner
	conf   []byte
	alloc  *ipam.Allocator
}

const (
	labNetwork = "k8s-pod-network"
	labHostIP  = "10.99.0.1"
)

func newAPILab(t *testing.T) *apiLab {
	t.Helper()
	netnstest.Privileged(t)
	testenv.Need(t, env)
	ctx := context.Background()
	wipe := func() {
		for _, obj := range []client.Object{&v1.IPPool{}, &v1.IPAMBlock{}, &v1.BlockAffinity{}, &v1.IPAMHandle{}} {
			if err := env.Client.DeleteAllOf(ctx, obj); err != nil {
				t.Errorf("wipe %T: %v", obj, err)
			}
		}
		_ = env.Client.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace("default"), client.GracePeriodSeconds(0))
	}
	wipe()
	t.Cleanup(wipe)
	blockSize := 28
	pool := &v1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "lab"}, Spec: v1.IPPoolSpec{CIDR: "10.246.0.0/24", BlockSize: &blockSize}}
	if err := env.Client.Create(ctx, pool); err != nil {
		t.Fatal(err)
	}

	host := netnstest.New(t, "h")
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "uplink", "type", "veth", "peer", "name", "uplink-peer"},
		{"addr", "add", labHostIP + "/24", "dev", "uplink"},
		{"link", "set", "uplink", "up"},
		{"link", "set", "uplink-peer", "up"},
		{"route", "add", "default", "dev", "uplink"},
	} {
		ipOut(t, host, args...)
	}
	target, err := labnet.APITarget(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := labnet.StartAPIProxy(netnstest.Name(host), labnet.APIAddr, target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := labnet.RewriteKubeconfig(env.Kubeconfig, kubeconfig, "https://"+labnet.APIAddr); err != nil {
		t.Fatal(err)
	}
	conf, err := json.Marshal(map[string]any{
		"cniVersion": "1.0.0", "name": labNetwork, "type": "gingham", "mtu": 1400, "state_dir": dir, "nodename": "node-r",
		"kubernetes": map[string]any{"kubeconfig": kubeconfig},
		"ipam":       map[string]any{"type": "gingham-ipam", "lock_file": filepath.Join(dir, "ipam.lock")},
	})
	if err != nil {
		t.Fatal(err)
	}
	plugin := attachtest.Self(host)
	if plugin.Path, err = attachtest.SelfIPAM(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	hh, err := netlinkx.Open(host.Fd())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hh.Close)
	return &apiLab{host: host, hh: hh, plugin: plugin, conf: conf, alloc: ipam.New(k8sstore.New(env.Client), ipam.Options{})}
}

// labPod is a pod of an apiLab: its Pod object, namespace and container.
type labPod struct {
	name, containerID string
	ns                *netns.NS
}

func (l *apiLab) newPod(t *testing.T, name, containerID string) *labPod {
	t.Helper()
	obj := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec:       corev1.PodSpec{NodeName: "node-r", Containers: []corev1.Container{{Name: "c", Image: "x"}}},
	}
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
	return &labPod{name: name, containerID: containerID, ns: netnstest.New(t, "p")}
}

func (l *apiLab) call(command string, p *labPod) attachtest.Call {
	return attachtest.Call{Command: command, ContainerID: p.containerID, Netns: p.ns.Path(), IfName: "eth0",
		Args: attachtest.PodArgs("default", p.name), Conf: l.conf}
}

// add runs c (an ADD) and returns the pod's address and the MAC the result
// gives for its interface.
func (l *apiLab) add(t *testing.T, c attachtest.Call) (netip.Addr, string) {
	t.Helper()
	out, err := l.plugin.Run(c)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Interfaces []struct{ Name, Mac, Sandbox string } `json:"interfaces"`
		IPs        []struct{ Address string }            `json:"ips"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.IPs) != 1 || len(res.Interfaces) != 2 {
		t.Fatalf("ADD result %s: %v", out, err)
	}
	return netip.MustParsePrefix(res.IPs[0].Address).Addr(), res.Interfaces[1].Mac
}

// hostVeth returns the pod's host veth.
func (l *apiLab) hostVeth(t *testing.T, p *labPod) netlinkx.Link {
	t.Helper()
	hl, err := l.hh.LinkByName(felix.HostVethName("cali", "default", p.name))
	if err != nil {
		t.Fatal(err)
	}
	return hl
}

// neighbourMAC is the MAC of the host's permanent neighbour entry for ip.
func (l *apiLab) neighbourMAC(t *testing.T, hl netlinkx.Link, ip netip.Addr) string {
	t.Helper()
	ns, err := l.hh.NeighList(hl.Index)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if n.IP == ip && n.Permanent {
			return n.MAC.String()
		}
	}
	return ""
}

// ping sends one echo request from the host to ip.
func (l *apiLab) ping(ip netip.Addr) error {
	out, err := exec.Command("ip", "netns", "exec", netnstest.Name(l.host), "busybox", "ping", "-c", "1", "-W", "2", ip.String()).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ping %s from the host: %w: %s", ip, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// podMAC is the MAC of the pod's eth0 as it is.
func podMAC(t *testing.T, p *labPod) string {
	t.Helper()
	h, err := netlinkx.Open(p.ns.Fd())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	l, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	return l.MAC.String()
}

// labAgent is the agent's dataplane on the lab's host, fed as gingham-node
// feeds it: the local endpoints it last read from the kernel, nothing else.
type labAgent struct {
	d       *felix.Dataplane
	host    *netns.NS
	reports chan felix.Report
}

func startAgent(t *testing.T, host *netns.NS) *labAgent {
	t.Helper()
	a := &labAgent{host: host, reports: make(chan felix.Report, 64)}
	var err error
	a.d, err = felix.New(felix.WithNetNS(host), felix.WithMinApplyInterval(20*time.Millisecond),
		felix.WithResyncInterval(time.Hour), felix.WithOnApply(func(r felix.Report) { a.reports <- r }))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	for _, err := range []error{a.d.SetLocalBlocks(ctx, nil), a.d.SetRemoteRoutes(ctx, nil, true), a.d.SetNATPools(ctx, nil)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	a.rediscover(t)
	return a
}

// rediscover is the agent's resync: it reads its pods back from the kernel
// and applies them (a full resync).
func (a *labAgent) rediscover(t *testing.T) {
	t.Helper()
	eps, err := felix.DiscoverEndpoints(a.host, "cali")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.d.SetLocalEndpoints(context.Background(), eps); err != nil {
		t.Fatal(err)
	}
	a.resync(t)
}

// resync applies what the agent already knows, as it does on every link
// event and periodically.
func (a *labAgent) resync(t *testing.T) {
	t.Helper()
	for len(a.reports) > 0 { // only an apply asked for below counts
		<-a.reports
	}
	if err := a.d.Resync(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case r := <-a.reports:
			if r.Err != nil {
				t.Fatalf("dataplane apply: %v", r.Err)
			}
			if r.Full {
				return
			}
		case <-deadline:
			t.Fatal("no full apply within 10s")
		}
	}
}

// TestPrivilegedRepeatedAdd is issue 18's bug 2: ADD, then ADD again with the
// same container ID, netns and interface, under the agent's dataplane. The
// repeated ADD used to recreate the veth (a new pod MAC); the agent, still
// holding the MAC it had read before, wrote it back onto the new veth, read
// it back on its next resync and kept the pod unreachable for good. Now the
// repeated ADD re-uses the pair, and when the pair must be recreated (the
// pod's interface was lost) the agent writes a MAC only onto the link it
// read it from.
func TestPrivilegedRepeatedAdd(t *testing.T) {
	tests := []struct {
		name string
		// between runs between the two ADDs.
		between func(t *testing.T, p *labPod)
		// reused: the second ADD keeps the first's pair (same host link,
		// same pod MAC).
		reused bool
	}{
		{name: "same container, netns and interface", reused: true},
		{name: "the pod's interface was lost", between: func(t *testing.T, p *labPod) {
			ipOut(t, p.ns, "link", "del", "eth0")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lab := newAPILab(t)
			p := lab.newPod(t, "web", "c1")
			ip, mac1 := lab.add(t, lab.call("ADD", p))
			first := lab.hostVeth(t, p)
			agent := startAgent(t, lab.host)
			if err := lab.ping(ip); err != nil {
				t.Fatalf("after the first ADD: %v", err)
			}

			if tt.between != nil {
				tt.between(t, p)
			}
			ip2, mac2 := lab.add(t, lab.call("ADD", p))
			if ip2 != ip {
				t.Fatalf("repeated ADD gave %s, the first %s", ip2, ip)
			}
			// The agent applies what it read before the ADD (as on the
			// veth's link events), then resyncs from the kernel.
			agent.resync(t)
			agent.rediscover(t)

			second := lab.hostVeth(t, p)
			if got := second.Index == first.Index && mac2 == mac1; got != tt.reused {
				t.Errorf("pair re-used = %v (host link %d -> %d, pod MAC %s -> %s), want %v", got, first.Index, second.Index, mac1, mac2, tt.reused)
			}
			if want := podMAC(t, p); mac2 != want {
				t.Errorf("ADD result gives pod MAC %s, eth0 has %s", mac2, want)
			}
			if got, want := lab.neighbourMAC(t, second, ip), podMAC(t, p); got != want {
				t.Errorf("host neighbour %s -> %s, the pod's eth0 is %s", ip, got, want)
			}
			if err := lab.ping(ip); err != nil {
				t.Errorf("after the repeated ADD and the agent's resync: %v", err)
			}
			check := lab.call("CHECK", p)
			out, _ := lab.plugin.Run(lab.call("ADD", p)) // a third ADD: same result
			check.Conf = withPrev(t, lab.conf, out)
			if _, err := lab.plugin.Run(check); err != nil {
				t.Errorf("CHECK after the repeated ADDs: %v", err)
			}
		})
	}
}

// TestPrivilegedFailedRepeatedAddKeepsAddress is issue 18's bug 3: an ADD
// that repeats a successful one and fails must leave the running pod as it
// was: its address allocated to its handle, its veth in place, reachable.
// A first ADD that fails still gives back the address it took.
func TestPrivilegedFailedRepeatedAddKeepsAddress(t *testing.T) {
	tests := []struct {
		name string
		// first: whether a first ADD succeeds before the failing one.
		first bool
		// fail makes the next ADD of p fail and returns that call.
		fail func(t *testing.T, l *apiLab, p *labPod) attachtest.Call
	}{
		{name: "repeated, its netns no longer exists", first: true, fail: func(t *testing.T, l *apiLab, p *labPod) attachtest.Call {
			c := l.call("ADD", p)
			c.Netns = "/run/netns/does-not-exist"
			return c
		}},
		{name: "repeated, its Pod object is gone (annotation fails)", first: true, fail: deletePodObject},
		{name: "first, its Pod object is gone (annotation fails)", fail: deletePodObject},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lab := newAPILab(t)
			p := lab.newPod(t, "web", "c1")
			handle := labNetwork + "." + p.containerID
			var ip netip.Addr
			var before netlinkx.Link
			if tt.first {
				ip, _ = lab.add(t, lab.call("ADD", p))
				before = lab.hostVeth(t, p)
			}
			if _, err := lab.plugin.Run(tt.fail(t, lab, p)); err == nil {
				t.Fatal("the ADD meant to fail succeeded")
			}
			held, err := lab.alloc.HandleAddrs(context.Background(), handle)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.first {
				if len(held) != 0 {
					t.Errorf("a failed first ADD left %v allocated to %s", held, handle)
				}
				if _, err := lab.hh.LinkByName(felix.HostVethName("cali", "default", p.name)); err == nil {
					t.Error("a failed first ADD left its host veth")
				}
				return
			}
			if len(held) != 1 || held[0] != ip {
				t.Errorf("after the failed repeated ADD %s holds %v, want the running pod's %s", handle, held, ip)
			}
			if after, err := lab.hh.LinkByName(before.Name); err != nil || after.Index != before.Index {
				t.Errorf("the running pod's veth %s (index %d) after the failed ADD: %+v, %v", before.Name, before.Index, after, err)
			}
			if err := lab.ping(ip); err != nil {
				t.Errorf("running pod after the failed ADD: %v", err)
			}
		})
	}
}

func deletePodObject(t *testing.T, l *apiLab, p *labPod) attachtest.Call {
	t.Helper()
	obj := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: p.name}}
	if err := env.Client.Delete(context.Background(), obj, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	return l.call("ADD", p)
}
