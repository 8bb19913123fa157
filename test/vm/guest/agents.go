package main

// The agents scenario (TestVMAgentsIPIPModes): the real gingham-node agents
// and CNI plugins in the VM, against the host's kube-apiserver.
//
// The guest's initial namespace is the router: it holds the two rack
// bridges (192.168.1.1/24, 192.168.2.1/24), the virtio NIC on qemu's user
// network (10.0.2.15/24; 10.0.2.2 is the host) and a TCP proxy on
// 10.96.0.1:6443 (an address on its loopback) to the host's API server.
// Nodes reach the proxy through their default route, so every agent and
// CNI plugin uses the same kubeconfig. The guest itself creates the API
// objects (Nodes as a kubelet would, the IPPool, Pods) and switches the
// pool's ipipMode with API updates.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/gingham-net/gingham/api/model"
	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/internal/kube"
	"github.com/gingham-net/gingham/internal/netlinkx"
	"github.com/gingham-net/gingham/internal/netns"
	"github.com/gingham-net/gingham/ipip"
)

const (
	agentsDir        = "/agents"
	agentsConfigPath = agentsDir + "/config.json"
	kubeconfigPath   = agentsDir + "/kubeconfig"
	guestUplink      = "10.0.2.15/24" // qemu user network
	agentPoolName    = "vm-pool"
	agentNamespace   = "gingham-system"
	cniDir           = "/opt/cni/bin"
	// convergeTimeout bounds how long the agents may take to re-program
	// routes after a pool change (software emulation, 2 vCPUs).
	convergeTimeout = 45 * time.Second
)

// agentsConfig is /agents/config.json, written by the host test.
type agentsConfig struct {
	APIServer string `json:"apiServer"` // host:port of the API server from the guest (10.0.2.2:<port>)
	VIP       string `json:"vip"`       // address:port the proxy listens on
}

// agentProc is one gingham-node process.
type agentProc struct {
	n      *node
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
	err    error
}

// agentsWorld is the world plus what the agents scenario needs.
type agentsWorld struct {
	*world
	c      client.Client
	procs  []*agentProc
	tor    *exec.Cmd // BIRD on the router
	pids   map[string]int
	blocks map[string][]netip.Prefix // node -> its confirmed blocks
	sinks  map[*node]*atomic.Int64
}

func runAgents(r *results) {
	ctx, cancel := context.WithTimeout(context.Background(), 7*time.Minute)
	defer cancel()
	aw, err := setupAgents(ctx, r)
	if aw != nil {
		defer aw.dumpLogsOnFailure(r)
	}
	if err != nil {
		return
	}
	for _, mode := range []model.Encap{model.EncapAlways, model.EncapCrossSubnet, model.EncapNever} {
		m := modeName(mode)
		if mode == model.EncapNever {
			// Never needs a routed path between the racks: the ToR (BIRD)
			// learned every block from its node over BGP.
			r.check(m+"/tor-routes", aw.torLearned(ctx), "the ToR (BIRD, AS %d) routes every block via its node, learned over iBGP (proto bird): %v", torAS, aw.blocks)
		}
		if mode != model.EncapAlways {
			err := aw.setPoolMode(ctx, mode)
			r.check(m+"/api-switch", err, "IPPool %s spec.ipipMode set to %s with an API update", agentPoolName, mode)
			if err != nil {
				return
			}
		}
		took, err := aw.waitRoutes(ctx, mode)
		r.check(m+"/routes", err, "every node's routes to the other nodes' blocks match %s after %s", mode, took.Round(100*time.Millisecond))
		if err != nil {
			return
		}
		aw.tunnels(r, mode)
		flows(r, aw.world, mode)
		hostSource(r, aw.world, mode)
		if mode == model.EncapAlways {
			aw.forgedAgents(r)
		}
		r.check(m+"/agents-not-restarted", aw.sameAgents(), "agent PIDs %v", aw.pids)
		aw.readiness(r, m)
	}
}

// setupAgents builds the network, starts the proxy and the agents and
// attaches one pod per node; every step is a check.
func setupAgents(ctx context.Context, r *results) (*agentsWorld, error) {
	var cfg agentsConfig
	b, err := os.ReadFile(agentsConfigPath)
	if err == nil {
		err = json.Unmarshal(b, &cfg)
	}
	if err == nil {
		err = uplinkAndProxy(cfg)
	}
	r.check("agents/api-proxy", err, "%s -> %s over qemu's user network", cfg.VIP, cfg.APIServer)
	if err != nil {
		return nil, err
	}
	w, err := buildAgentsTopo()
	r.check("agents/topology", err, "router in the initial namespace, 2 racks x 2 nodes, attacker on rack A")
	if err != nil {
		return nil, err
	}
	aw := &agentsWorld{world: w, pids: map[string]int{}, blocks: map[string][]netip.Prefix{}, sinks: map[*node]*atomic.Int64{}}
	if aw.tor, err = startToR(w); err != nil {
		r.check("agents/tor", err, "BIRD on the router")
		return aw, err
	}
	start := time.Now()
	err = aw.connect(ctx)
	r.check("agents/api", err, "guest client reached the API server in %s", time.Since(start).Round(time.Millisecond))
	if err != nil {
		return aw, err
	}
	err = aw.applyObjects(ctx)
	r.check("agents/objects", err, "Nodes (with InternalIP), namespace %s, IPPool %s 10.244.0.0/16 /26 ipipMode Always natOutgoing false, a BGPPeer per node to its rack's ToR (AS %d)", agentNamespace, agentPoolName, torAS)
	if err != nil {
		return aw, err
	}
	err = aw.startAgents()
	r.check("agents/start", err, "gingham-node started in each node namespace: %v", aw.pids)
	if err != nil {
		return aw, err
	}
	start = time.Now()
	err = aw.waitTunnelAddrs(ctx)
	r.check("agents/tunnel-addresses", err, "every Node annotated %s by its agent (IPAM) after %s: %s", v1.AnnotationIPv4IPIPTunnelAddr,
		time.Since(start).Round(100*time.Millisecond), aw.tunnelList())
	if err != nil {
		return aw, err
	}
	start = time.Now()
	err = aw.waitReady(ctx)
	r.check("agents/ready", err, "every agent's /readyz is 200 (BGP mesh established) after %s", time.Since(start).Round(100*time.Millisecond))
	if err != nil {
		return aw, err
	}
	for _, n := range aw.nodes {
		start = time.Now()
		err := aw.createPod(ctx, n)
		r.check("agents/pod/"+n.name, err, "CNI ADD (gingham + gingham-ipam) gave %s in %s", n.pod.ip, time.Since(start).Round(time.Millisecond))
		if err != nil {
			return aw, err
		}
	}
	err = aw.readBlocks(ctx)
	r.check("agents/blocks", err, "confirmed BlockAffinities: %v; each pod and tunnel address inside its node's block", aw.blocks)
	if err != nil {
		return aw, err
	}
	for _, n := range aw.nodes {
		if aw.sinks[n], err = servePod(n.pod); err == nil {
			n.cap, err = startCapture(n.ns, "eth0")
		}
		if err == nil {
			n.x, err = netlinkx.Open(n.ns.Fd())
		}
		if err != nil {
			r.check("agents/pod-servers", err, "%s", n.name)
			return aw, err
		}
	}
	return aw, nil
}

// uplinkAndProxy configures the virtio NIC and the proxy to the host's API
// server on the VIP (on the router's loopback).
func uplinkAndProxy(cfg agentsConfig) error {
	self, err := netns.Current()
	if err != nil {
		return err
	}
	defer self.Close()
	h, err := handle(self)
	if err != nil {
		return err
	}
	defer h.Close()
	vip, err := netip.ParseAddrPort(cfg.VIP)
	if err != nil {
		return fmt.Errorf("vip %q: %w", cfg.VIP, err)
	}
	if _, err := addAddrUp(h, "lo", netip.PrefixFrom(vip.Addr(), 32)); err != nil {
		return err
	}
	if _, err := addAddrUp(h, "eth0", netip.MustParsePrefix(guestUplink)); err != nil {
		return fmt.Errorf("uplink (virtio_net): %w", err)
	}
	ln, err := net.Listen("tcp4", cfg.VIP)
	if err != nil {
		return fmt.Errorf("proxy listen: %w", err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go proxy(c, cfg.APIServer)
		}
	}()
	return nil
}

func proxy(c net.Conn, upstream string) {
	defer c.Close()
	u, err := net.DialTimeout("tcp4", upstream, 10*time.Second)
	if err != nil {
		fmt.Printf("%s NOTE proxy: dial %s: %v\n", Prefix, upstream, err)
		return
	}
	defer u.Close()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(u, c)
	go cp(c, u)
	<-done
	<-done
}

// buildAgentsTopo is build() without pods and product pieces: the router
// is the initial namespace (where the proxy and the uplink are).
func buildAgentsTopo() (*world, error) {
	w := &world{}
	var err error
	if w.router, err = netns.Current(); err != nil {
		return nil, err
	}
	rh, err := routerRacks(w)
	if err != nil {
		return nil, err
	}
	defer rh.Close()
	for _, s := range []struct {
		name string
		rack int
		addr string
	}{{"a1", 0, "192.168.1.11/24"}, {"a2", 0, "192.168.1.12/24"}, {"b1", 1, "192.168.2.21/24"}, {"b2", 1, "192.168.2.22/24"}} {
		n := &node{name: s.name, rack: s.rack, addr: netip.MustParsePrefix(s.addr)}
		if n.ns, err = netns.NewNamed("node-" + n.name); err != nil {
			return nil, err
		}
		if err := w.plug(rh, n.ns, "u-"+n.name, n.rack, n.addr); err != nil {
			return nil, fmt.Errorf("node %s: %w", n.name, err)
		}
		if err := sysctl(n.ns, "net/ipv4/ip_forward", "1"); err != nil {
			return nil, err
		}
		w.nodes = append(w.nodes, n)
	}
	if w.attacker, err = netns.NewNamed("attacker"); err != nil {
		return nil, err
	}
	if err := w.plug(rh, w.attacker, "u-x", 0, netip.MustParsePrefix("192.168.1.66/24")); err != nil {
		return nil, err
	}
	return w, nil
}

// connect makes the guest's API client and waits for the API server.
func (aw *agentsWorld) connect(ctx context.Context) error {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfigPath)
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	rc.Timeout = 20 * time.Second
	if aw.c, err = client.New(rc, client.Options{Scheme: kube.Scheme()}); err != nil {
		return fmt.Errorf("api client: %w", err)
	}
	return poll(ctx, 60*time.Second, func() error {
		return aw.c.List(ctx, &v1.IPPoolList{})
	})
}

// poll calls f until it succeeds or timeout passes; the last error is
// returned.
func poll(ctx context.Context, timeout time.Duration, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %s: %w", timeout, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// applyObjects creates what a cluster has before the agents start: the
// Nodes (as their kubelets would register them), the agents' namespace and
// the IPPool in Always mode.
func (aw *agentsWorld) applyObjects(ctx context.Context) error {
	bs := 26
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: agentNamespace}},
		&v1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: agentPoolName},
			Spec: v1.IPPoolSpec{CIDR: "10.244.0.0/16", BlockSize: &bs, IPIPMode: v1.EncapMode(model.EncapAlways), NATOutgoing: false}},
	}
	for _, p := range torPeers(aw.world) {
		objs = append(objs, p)
	}
	for _, o := range objs {
		if err := aw.c.Create(ctx, o); err != nil {
			return fmt.Errorf("create %T %s: %w", o, o.GetName(), err)
		}
	}
	for _, n := range aw.nodes {
		obj := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.name, Labels: map[string]string{"kubernetes.io/hostname": n.name}}}
		if err := aw.c.Create(ctx, obj); err != nil {
			return fmt.Errorf("create node %s: %w", n.name, err)
		}
		obj.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: n.addr.Addr().String()}, {Type: corev1.NodeHostName, Address: n.name}}
		if err := aw.c.Status().Update(ctx, obj); err != nil {
			return fmt.Errorf("node %s status: %w", n.name, err)
		}
	}
	return nil
}

func stateDir(n *node) string { return filepath.Join("/run/gingham", n.name, "state") }

// startAgents starts /bin/gingham-node in every node's namespace with the
// environment a DaemonSet pod would get (test/labnet.AgentEnv).
func (aw *agentsWorld) startAgents() error {
	for _, n := range aw.nodes {
		if err := os.MkdirAll(stateDir(n), 0o755); err != nil {
			return err
		}
		p := &agentProc{n: n, log: filepath.Join("/tmp", "agent-"+n.name+".log"), exited: make(chan struct{})}
		f, err := os.Create(p.log)
		if err != nil {
			return err
		}
		p.cmd = exec.Command("/bin/gingham-node")
		p.cmd.Env = []string{
			"PATH=/bin", "HOME=/tmp",
			"GINGHAM_NODENAME=" + n.name,
			"GINGHAM_KUBECONFIG=" + kubeconfigPath,
			"GINGHAM_IP=" + n.addr.String(),
			"GINGHAM_BGP_SOCKET=" + filepath.Join("/run/gingham", n.name, "bgp.sock"),
			"GINGHAM_STATE_DIR=" + stateDir(n),
			"GINGHAM_HEALTH_ADDR=127.0.0.1:9099", // each namespace has its own loopback
			"GINGHAM_LOG_LEVEL=info",
		}
		p.cmd.Stdout, p.cmd.Stderr = f, f
		// The child is forked from the locked thread: it starts in n's namespace.
		if err := n.ns.Do(p.cmd.Start); err != nil {
			f.Close()
			return fmt.Errorf("start gingham-node on %s: %w", n.name, err)
		}
		go func() {
			p.err = p.cmd.Wait()
			f.Close()
			close(p.exited)
		}()
		aw.procs = append(aw.procs, p)
		aw.pids[n.name] = p.cmd.Process.Pid
	}
	return nil
}

// sameAgents fails when any agent exited (the PIDs recorded at start are
// the processes that must still be serving).
func (aw *agentsWorld) sameAgents() error {
	for _, p := range aw.procs {
		select {
		case <-p.exited:
			return fmt.Errorf("agent %s (pid %d) exited: %v", p.n.name, aw.pids[p.n.name], p.err)
		default:
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", aw.pids[p.n.name])); err != nil {
			return fmt.Errorf("agent %s: %w", p.n.name, err)
		}
	}
	return nil
}

func (aw *agentsWorld) agentDied() error {
	for _, p := range aw.procs {
		select {
		case <-p.exited:
			return fmt.Errorf("agent %s exited: %v", p.n.name, p.err)
		default:
		}
	}
	return nil
}

// waitTunnelAddrs waits for each agent to record its IPAM tunnel address
// on its Node.
func (aw *agentsWorld) waitTunnelAddrs(ctx context.Context) error {
	return poll(ctx, 120*time.Second, func() error {
		if err := aw.agentDied(); err != nil {
			return err
		}
		for _, n := range aw.nodes {
			var obj corev1.Node
			if err := aw.c.Get(ctx, client.ObjectKey{Name: n.name}, &obj); err != nil {
				return err
			}
			a, err := netip.ParseAddr(obj.Annotations[v1.AnnotationIPv4IPIPTunnelAddr])
			if err != nil {
				return fmt.Errorf("node %s: no tunnel address yet", n.name)
			}
			if !netip.MustParsePrefix("10.244.0.0/16").Contains(a) {
				return fmt.Errorf("node %s: tunnel address %s outside the pool", n.name, a)
			}
			n.tunnel = a
		}
		return nil
	})
}

func (aw *agentsWorld) tunnelList() string {
	var s []string
	for _, n := range aw.nodes {
		s = append(s, n.name+"="+n.tunnel.String())
	}
	return strings.Join(s, " ")
}

// healthz asks the agent in n's namespace for path; it returns the status
// code and body.
func healthz(n *node, path string) (int, string, error) {
	var code int
	var body string
	err := n.ns.Do(func() error {
		c, err := net.DialTimeout("tcp4", "127.0.0.1:9099", 3*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := fmt.Fprintf(c, "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", path); err != nil {
			return err
		}
		b, err := io.ReadAll(c)
		if err != nil {
			return err
		}
		head, rest, _ := strings.Cut(string(b), "\r\n\r\n")
		if _, err := fmt.Sscanf(head, "HTTP/1.%d %d", new(int), &code); err != nil {
			return fmt.Errorf("answer %q: %w", head, err)
		}
		body = strings.TrimSpace(rest)
		return nil
	})
	return code, body, err
}

func (aw *agentsWorld) waitReady(ctx context.Context) error {
	return poll(ctx, 120*time.Second, func() error {
		if err := aw.agentDied(); err != nil {
			return err
		}
		for _, n := range aw.nodes {
			code, body, err := healthz(n, "/readyz")
			if err != nil {
				return fmt.Errorf("%s: %w", n.name, err)
			}
			if code != 200 {
				return fmt.Errorf("%s: /readyz %d %s", n.name, code, body)
			}
		}
		return nil
	})
}

// readiness checks each agent's /readyz after a mode's checks: every
// session up (mesh and ToR) and the routes programmed, in every mode.
func (aw *agentsWorld) readiness(r *results, m string) {
	var bad []string
	for _, n := range aw.nodes {
		code, body, err := healthz(n, "/readyz")
		if err != nil || code != 200 {
			bad = append(bad, fmt.Sprintf("%s: %d %s %v", n.name, code, body, err))
		}
	}
	var err error
	if len(bad) > 0 {
		err = errors.New(strings.Join(bad, "; "))
	}
	r.check(m+"/agents-ready", err, "/readyz 200 on every node")
}

// createPod does what a container runtime does: the Pod object, a network
// namespace, CNI ADD with the real plugin in the node's namespace, then
// the pod's IP in its status.
func (aw *agentsWorld) createPod(ctx context.Context, n *node) error {
	name := "pod-" + n.name
	obj := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec:       corev1.PodSpec{NodeName: n.name, Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}},
	}
	if err := aw.c.Create(ctx, obj); err != nil {
		return fmt.Errorf("create pod: %w", err)
	}
	pns, err := netns.NewNamed(name)
	if err != nil {
		return err
	}
	conf, err := json.Marshal(map[string]any{
		"cniVersion": "1.0.0", "name": "k8s-pod-network", "type": "gingham",
		"kubeconfig": kubeconfigPath, "nodename": n.name, "stateDir": stateDir(n),
		"ipam": map[string]any{"type": "gingham-ipam", "kubeconfig": kubeconfigPath, "nodename": n.name},
	})
	if err != nil {
		return err
	}
	id := fmt.Sprintf("%x", time.Now().UnixNano())
	cmd := exec.Command(filepath.Join(cniDir, "gingham"))
	cmd.Env = []string{"PATH=/bin", "HOME=/tmp",
		"CNI_COMMAND=ADD", "CNI_CONTAINERID=" + id, "CNI_NETNS=" + pns.Path(), "CNI_IFNAME=eth0",
		"CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=" + name + ";K8S_POD_INFRA_CONTAINER_ID=" + id,
		"CNI_PATH=" + cniDir}
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(conf), &stdout, &stderr
	if err := n.ns.Do(cmd.Run); err != nil {
		return fmt.Errorf("CNI ADD: %w: %s %s", err, strings.TrimSpace(stdout.String()), strings.TrimSpace(stderr.String()))
	}
	var res struct {
		IPs []struct {
			Address string `json:"address"`
		} `json:"ips"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || len(res.IPs) == 0 {
		return fmt.Errorf("CNI result %s has no IP (%v)", stdout.String(), err)
	}
	ip, err := netip.ParsePrefix(res.IPs[0].Address)
	if err != nil {
		return fmt.Errorf("CNI result address: %w", err)
	}
	n.pod = &pod{name: name, ns: pns, ip: ip.Addr()}
	patch, _ := json.Marshal(map[string]any{"status": map[string]any{"podIP": ip.Addr().String(),
		"podIPs": []map[string]string{{"ip": ip.Addr().String()}}, "phase": string(corev1.PodRunning)}})
	if err := aw.c.Status().Patch(ctx, obj, client.RawPatch(k8stypes.MergePatchType, patch)); err != nil {
		return fmt.Errorf("pod status: %w", err)
	}
	// The plugin set the pod's MTU from the agent's MTU file.
	ph, err := handle(pns)
	if err != nil {
		return err
	}
	defer ph.Close()
	l, err := ph.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("pod eth0: %w", err)
	}
	if l.Attrs().MTU != podMTU {
		return fmt.Errorf("pod eth0 MTU %d, want %d (host MTU - 20 with IPIP)", l.Attrs().MTU, podMTU)
	}
	return nil
}

// readBlocks reads each node's confirmed blocks from the API and checks
// that its pod and tunnel address are inside them.
func (aw *agentsWorld) readBlocks(ctx context.Context) error {
	var list v1.BlockAffinityList
	if err := aw.c.List(ctx, &list); err != nil {
		return err
	}
	for _, a := range list.Items {
		if a.Spec.State != v1.AffinityConfirmed || a.Spec.Deleted {
			continue
		}
		p, err := netip.ParsePrefix(a.Spec.CIDR)
		if err != nil {
			return fmt.Errorf("affinity %s: %w", a.Name, err)
		}
		aw.blocks[a.Spec.Node] = append(aw.blocks[a.Spec.Node], p)
	}
	for _, n := range aw.nodes {
		bs := aw.blocks[n.name]
		in := func(a netip.Addr) bool {
			for _, b := range bs {
				if b.Contains(a) {
					return true
				}
			}
			return false
		}
		if !in(n.pod.ip) || !in(n.tunnel) {
			return fmt.Errorf("node %s: pod %s / tunnel %s not inside its blocks %v", n.name, n.pod.ip, n.tunnel, bs)
		}
		n.block = bs[0]
	}
	return nil
}

func (aw *agentsWorld) setPoolMode(ctx context.Context, mode model.Encap) error {
	var p v1.IPPool
	if err := aw.c.Get(ctx, client.ObjectKey{Name: agentPoolName}, &p); err != nil {
		return err
	}
	p.Spec.IPIPMode = v1.EncapMode(mode)
	return aw.c.Update(ctx, &p)
}

// routeDesc describes the main-table route to dst in h's namespace as
// "via <gw> dev <link>[ onlink]", or "absent".
func routeDesc(h *netlink.Handle, dst netip.Prefix) (string, error) {
	rs, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: ipnet(dst), Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
	if err != nil {
		return "", fmt.Errorf("list routes to %s: %w", dst, err)
	}
	if len(rs) == 0 {
		return "absent", nil
	}
	var out []string
	for _, r := range rs {
		dev := "?"
		if l, err := h.LinkByIndex(r.LinkIndex); err == nil {
			dev = l.Attrs().Name
		}
		s := fmt.Sprintf("via %s dev %s", r.Gw, dev)
		if r.Flags&int(netlink.FLAG_ONLINK) != 0 {
			s += " onlink"
		}
		if len(r.MultiPath) > 0 {
			s += fmt.Sprintf(" (+%d paths)", len(r.MultiPath))
		}
		out = append(out, s)
	}
	return strings.Join(out, " | "), nil
}

// wantRoute is the route n's agent should have towards m's blocks in mode;
// for Never across racks (next hop not on this subnet, which the kernel
// cannot install without a device) anything not through tunl0 is
// accepted and reported.
func wantRoute(mode model.Encap, n, m *node) (want string, exact bool) {
	if ipip.Encapsulate(mode, n.addr, m.addr.Addr()) {
		return fmt.Sprintf("via %s dev tunl0 onlink", m.addr.Addr()), true
	}
	if n.addr.Masked().Contains(m.addr.Addr()) {
		return fmt.Sprintf("via %s dev eth0", m.addr.Addr()), true
	}
	return "not through tunl0", false
}

// waitRoutes waits until every node's routes to the other nodes' blocks
// are what mode asks for, and returns how long that took.
func (aw *agentsWorld) waitRoutes(ctx context.Context, mode model.Encap) (time.Duration, error) {
	start := time.Now()
	var notes []string
	err := poll(ctx, convergeTimeout, func() error {
		if err := aw.agentDied(); err != nil {
			return err
		}
		notes = notes[:0]
		for _, n := range aw.nodes {
			h, err := handle(n.ns)
			if err != nil {
				return err
			}
			for _, m := range aw.nodes {
				if m == n {
					continue
				}
				want, exact := wantRoute(mode, n, m)
				for _, b := range aw.blocks[m.name] {
					got, err := routeDesc(h, b)
					if err != nil {
						h.Close()
						return err
					}
					if (exact && got != want) || (!exact && strings.Contains(got, "tunl0")) {
						h.Close()
						return fmt.Errorf("%s: route to %s (%s's block) is %q, want %q", n.name, b, m.name, got, want)
					}
					if !exact {
						notes = append(notes, fmt.Sprintf("%s->%s %s: %s", n.name, m.name, b, got))
					}
				}
			}
			h.Close()
		}
		return nil
	})
	if err == nil && len(notes) > 0 {
		sort.Strings(notes)
		fmt.Printf("%s NOTE %s/cross-rack-routes: %s (traffic takes the default route to the router)\n", Prefix, modeName(mode), strings.Join(notes, "; "))
	}
	return time.Since(start), err
}

// tunnels checks tunl0 on every node: in Always and CrossSubnet up, MTU
// 1480, exactly the Node's tunnel address; in Never without an address.
func (aw *agentsWorld) tunnels(r *results, mode model.Encap) {
	for _, n := range aw.nodes {
		d := ipip.Desired{Enabled: mode != model.EncapNever, Addr: n.tunnel, MTU: podMTU}
		err := poll(context.Background(), 10*time.Second, func() error { return checkTunnel(n, d) })
		want := fmt.Sprintf("ipip, up, mtu %d, address %s/32", podMTU, n.tunnel)
		if !d.Enabled {
			want = "no address"
		}
		r.check(fmt.Sprintf("%s/tunl0/%s", modeName(mode), n.name), err, "%s", want)
	}
}

// forgedAgents: an IPIP packet from the attacker (not a node) to a1,
// carrying UDP to a1's pod, is dropped by the agent's filter: the pod gets
// nothing and the drop counter of the agent's table rises. The filter is
// only read here.
func (aw *agentsWorld) forgedAgents(r *results) {
	a := aw.nodes[0]
	f := ipip.NewFilter(a.ns.Fd())
	st0, err := f.State()
	before := aw.sinks[a].Load()
	for i := 0; i < 3 && err == nil; i++ {
		err = forgeIPIP(aw.attacker, a.addr.Addr(), netip.MustParseAddr("10.99.0.1"), a.pod.ip)
	}
	time.Sleep(time.Second)
	st1, serr := f.State()
	err = errors.Join(err, serr)
	got := aw.sinks[a].Load() - before
	var peers []string
	for _, p := range st1.Peers {
		peers = append(peers, p.String())
	}
	if err == nil && len(st1.Peers) != len(aw.nodes) {
		err = fmt.Errorf("agent's filter allows %v, want the %d node addresses", peers, len(aw.nodes))
	}
	if err == nil && (got != 0 || st1.Dropped-st0.Dropped < 3) {
		err = fmt.Errorf("pod received %d forged datagrams, filter dropped %d", got, st1.Dropped-st0.Dropped)
	}
	r.check("always/forged-ipip/dropped-by-agent-filter", err, "attacker 192.168.1.66 -> %s: pod received %d, drop counter +%d, peers %v",
		a.addr.Addr(), got, st1.Dropped-st0.Dropped, peers)
}

// dumpLogsOnFailure prints the tail of every agent's log when a check
// failed.
func (aw *agentsWorld) dumpLogsOnFailure(r *results) {
	if r.fail == 0 {
		return
	}
	logs := map[string]string{"tor": torLog}
	for _, p := range aw.procs {
		logs[p.n.name] = p.log
	}
	for name, path := range logs {
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		var lines []string
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		f.Close()
		for _, l := range lines[max(0, len(lines)-15):] {
			fmt.Printf("%s NOTE log/%s: %s\n", Prefix, name, l)
		}
	}
}
