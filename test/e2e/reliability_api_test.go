package e2e

// Issue 9's control-plane reliability tests (make test-reliability): the
// API server cut off the nodes for a minute, and CNI ADDs killed at random
// moments. Each test logs "reliability: does: ..." once and its figures as
// "reliability: figure: <name>: <value>" for hack/reliability-report.
// Helpers are prefixed rapi.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/internal/testenv"
	"github.com/gingham-net/gingham/test/labnet"
)

// rapiLongEnv selects the long variants (make test-reliability).
const rapiLongEnv = "GINGHAM_RELIABILITY_LONG"

func rapiLong() bool { return os.Getenv(rapiLongEnv) == "1" }

// rapiFigure logs one figure for the reliability report.
func rapiFigure(t *testing.T, name, format string, a ...any) {
	t.Helper()
	t.Logf("reliability: figure: %s: %s", name, fmt.Sprintf(format, a...))
}

// rapiSince formats a duration for a figure.
func rapiSince(d time.Duration) string { return d.Round(100 * time.Millisecond).String() }

// rapiPingResult is the summary of one busybox ping run.
type rapiPingResult struct {
	name           string
	sent, received int
	out            string
	err            error
}

var rapiPingStats = regexp.MustCompile(`(\d+) packets transmitted, (\d+) packets received`)

// rapiPing pings to from from's namespace count times, every interval.
func rapiPing(ctx context.Context, from, to *labnet.Pod, count int, interval time.Duration) rapiPingResult {
	out, err := labnet.Run(ctx, from.NetNS, "busybox", "ping", "-c", strconv.Itoa(count),
		"-i", strconv.FormatFloat(interval.Seconds(), 'f', -1, 64), "-W", "2", to.IP.String())
	r := rapiPingResult{name: from.Name + " -> " + to.Name, out: out, err: err, sent: -1}
	if m := rapiPingStats.FindStringSubmatch(out); m != nil {
		r.sent, _ = strconv.Atoi(m[1])
		r.received, _ = strconv.Atoi(m[2])
	}
	return r
}

// rapiRouteMonitor records a node namespace's route events (ip monitor).
type rapiRouteMonitor struct {
	node string
	cmd  *exec.Cmd
	out  bytes.Buffer // read only after stop
	once sync.Once
}

func rapiMonitorRoutes(t *testing.T, lab *labnet.Lab, node string) *rapiRouteMonitor {
	t.Helper()
	m := &rapiRouteMonitor{node: node, cmd: labnet.Command(context.Background(), lab.NS(node), "ip", "monitor", "route")}
	m.cmd.Stdout = &m.out
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("ip monitor route in %s: %v", node, err)
	}
	t.Cleanup(func() { m.stop() })
	return m
}

// stop ends the monitor (by its PID) and returns what it printed.
func (m *rapiRouteMonitor) stop() string {
	m.once.Do(func() {
		_ = m.cmd.Process.Kill()
		_ = m.cmd.Wait()
	})
	return m.out.String()
}

var rapiProto96 = regexp.MustCompile(`\bproto 96\b`)

// rapiRouteEvents splits ip monitor output into deletions and other events
// of gingham's routes (protocol 96).
func rapiRouteEvents(out string) (deleted []string, added int) {
	for _, l := range strings.Split(out, "\n") {
		if !rapiProto96.MatchString(l) {
			continue
		}
		if strings.HasPrefix(l, "Deleted ") {
			deleted = append(deleted, l)
		} else {
			added++
		}
	}
	return deleted, added
}

// rapiRoutes returns a node's gingham routes, one per line, sorted.
func rapiRoutes(ctx context.Context, t *testing.T, lab *labnet.Lab, node string) []string {
	t.Helper()
	out, err := lab.Run(ctx, node, "ip", "route", "show", "proto", "96")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	return lines
}

// rapiAPIReachable opens a TLS connection to the API server from inside a
// namespace, as the agent there would (through its APIProxy).
func rapiAPIReachable(ns string) error {
	var c net.Conn
	if err := labnet.InNetNS(ns, func() (err error) {
		c, err = net.DialTimeout("tcp", labnet.APIAddr, 2*time.Second)
		return err
	}); err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	// Only the handshake matters; the lab's API server has a test CA.
	return tls.Client(c, &tls.Config{InsecureSkipVerify: true}).Handshake() //nolint:gosec // probe of the lab's own envtest server
}

// rapiStatus reads a node's GinghamNodeStatus through the host's client.
func rapiStatus(ctx context.Context, c client.Client, node string) (v1.GinghamNodeStatusStatus, error) {
	var st v1.GinghamNodeStatus
	err := c.Get(ctx, client.ObjectKey{Name: node}, &st)
	return st.Status, err
}

// rapiEstablished counts a status's Established sessions.
func rapiEstablished(st v1.GinghamNodeStatusStatus) int {
	n := 0
	for _, s := range st.Sessions {
		if s.State == "Established" {
			n++
		}
	}
	return n
}

// rapiHealth asks a node's agent for /livez or /readyz.
func rapiHealth(ctx context.Context, lab *labnet.Lab, node, path string) error {
	_, err := labnet.Run(ctx, lab.NS(node), "busybox", "wget", "-q", "-O", "-", "http://127.0.0.1:9099"+path)
	return err
}

// TestReliabilityAPIServerOutage cuts every node of a three-node mesh off
// the API server for a minute (three in the long variant). node3 gets it
// back after 15s and creates a pod in a pool made meanwhile, so node1 and
// node2 have something to catch up on. Forwarding, routes and agents must
// not notice the outage; the catch-up is timed.
func TestReliabilityAPIServerOutage(t *testing.T) {
	outage := 60 * time.Second
	if rapiLong() {
		outage = 180 * time.Second
	}
	const node3Back = 15 * time.Second
	const pingEvery = 200 * time.Millisecond
	t.Logf("reliability: does: cuts all three nodes of a BGP mesh off the API server for %s (labnet.APIProxy.Pause resets live and new connections; node3 gets the API back after %s and, through CNI, puts a pod in a natOutgoing pool created meanwhile) while pods ping across nodes, then checks 0 packets lost, no gingham (proto 96) route deleted, no TCP-MD5 mesh session down (password from a Secret), the same agent PIDs, and times node1's and node2's catch-up (pool in the NAT table, status rewritten)", outage, node3Back)
	rapiFigure(t, "outage", "%s for node1 and node2, %s for node3", outage, node3Back)

	// Generous: the machine is shared and lab setup alone can take minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute+outage)
	defer cancel()
	spec := labnet.MeshSpec(labnet.TestPrefix(), runDir(t), 3)
	// The mesh is TCP-MD5 protected, its password in a Secret the agents
	// read from the API: the outage must not cost the sessions their
	// password.
	for _, o := range spec.Objects {
		if c, ok := o.(*v1.BGPConfiguration); ok {
			c.Spec.NodeMeshPassword = &v1.BGPPassword{SecretKeyRef: &v1.SecretKeyRef{Name: "rapi-mesh", Key: "password"}}
		}
	}
	spec.Objects = append(spec.Objects, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: labnet.AgentNamespace, Name: "rapi-mesh"},
		StringData: map[string]string{"password": "rapi-mesh-password"}})
	lab, env := agentLab(t, ctx, spec)
	pods := createPods(t, ctx, lab, env, 1) // node1-a, node2-a, node3-a
	requireMatrix(t, ctx, pods)

	pids := map[string]int{}
	before := map[string][]string{}
	monitors := map[string]*rapiRouteMonitor{}
	proxies := map[string]*labnet.APIProxy{}
	for _, n := range spec.Nodes {
		d, ok := lab.Daemon(n.Name + "/gingham-node")
		if !ok {
			t.Fatalf("no agent on %s", n.Name)
		}
		pids[n.Name] = d.PID
		before[n.Name] = rapiRoutes(ctx, t, lab, n.Name)
		monitors[n.Name] = rapiMonitorRoutes(t, lab, n.Name)
		if proxies[n.Name], ok = lab.APIProxy(n.Name); !ok {
			t.Fatalf("no API proxy for %s", n.Name)
		}
	}
	statusBefore := map[string]v1.GinghamNodeStatusStatus{}
	for _, n := range spec.Nodes {
		waitFor(t, ctx, n.Name+" status shows 2 established sessions", func() (bool, string) {
			st, err := rapiStatus(ctx, env.Client, n.Name)
			statusBefore[n.Name] = st
			return err == nil && rapiEstablished(st) == 2, fmt.Sprintf("%+v %v", st.Sessions, err)
		})
	}

	// Pings cover the outage with a few seconds on each side.
	count := int((outage + 25*time.Second) / pingEvery)
	results := make(chan rapiPingResult, 3)
	for _, pair := range [][2]int{{0, 1}, {1, 2}, {2, 0}} {
		go func(from, to *labnet.Pod) { results <- rapiPing(ctx, from, to, count, pingEvery) }(pods[pair[0]], pods[pair[1]])
	}
	time.Sleep(3 * time.Second)

	pausedAt := time.Now()
	for _, p := range proxies {
		p.Pause()
	}
	if err := rapiAPIReachable(lab.NS("node1")); err == nil {
		t.Errorf("API server still reachable from node1 after Pause")
	}

	// node3 comes back and changes the cluster while node1 and node2 are
	// still cut off: a new natOutgoing pool and a pod of node3's in it.
	time.Sleep(time.Until(pausedAt.Add(node3Back)))
	proxies["node3"].Resume()
	waitFor(t, ctx, "API reachable from node3 again", func() (bool, string) {
		err := rapiAPIReachable(lab.NS("node3"))
		return err == nil, fmt.Sprint(err)
	})
	bs := 26
	pool := &v1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "rapi-late"},
		Spec: v1.IPPoolSpec{CIDR: "10.247.0.0/16", BlockSize: &bs, IPIPMode: v1.EncapNever, NATOutgoing: true}}
	if err := env.Client.Create(ctx, pool); err != nil {
		t.Fatal(err)
	}
	late, err := lab.CreatePod(ctx, env.Client, labnet.PodRequest{Node: "node3", Namespace: "default", Name: "node3-late",
		Annotations: map[string]string{"gingham.dev/ipv4pools": `["rapi-late"]`}})
	if err != nil {
		t.Fatalf("pod on node3 while node1 and node2 are cut off: %v", err)
	}
	created := time.Now()
	rapiFigure(t, "node3 pod in the new pool created", "%s after node3 got the API back (%s)", rapiSince(created.Sub(pausedAt.Add(node3Back))), late.IP)
	if err := rapiAPIReachable(lab.NS("node1")); err == nil {
		t.Errorf("API server reachable from node1 during its outage")
	}

	// node3 catches up (a blackhole for its new block) and advertises the
	// block; BGP needs no API, so node1 learns it while still cut off.
	lateBlock := netip.PrefixFrom(late.IP, 26).Masked().String()
	var node3At, learnedAt time.Duration
	for time.Now().Before(pausedAt.Add(outage-3*time.Second)) && (node3At == 0 || learnedAt == 0) {
		if out, _ := lab.Run(ctx, "node3", "ip", "route", "show", lateBlock); node3At == 0 && strings.Contains(out, "blackhole") {
			node3At = time.Since(created)
		}
		if out, _ := lab.Run(ctx, "node1", "ip", "route", "show", lateBlock); learnedAt == 0 && strings.Contains(out, "via "+spec.Nodes[2].Addr.Addr().String()) {
			learnedAt = time.Since(created)
		}
		time.Sleep(200 * time.Millisecond)
	}
	switch {
	case learnedAt > 0:
		rapiFigure(t, "node1 learned node3's new block over BGP while cut off", "yes, %s after the pod was created", rapiSince(learnedAt))
	case node3At == 0:
		rapiFigure(t, "node1 learned node3's new block over BGP while cut off", "not observed: node3 had not advertised it before the outage ended")
	default:
		t.Errorf("node1 did not learn node3's new block %s over BGP while cut off from the API (node3 had it %s after the pod was created)", lateBlock, node3At)
	}
	if node3At > 0 {
		rapiFigure(t, "node3 catch-up: blackhole for its new block", "%s after the pod was created (%s after node3's API returned)", rapiSince(node3At), rapiSince(created.Add(node3At).Sub(pausedAt.Add(node3Back))))
	}

	// The agents stay alive through the outage (kubelet would restart an
	// agent whose /livez fails).
	time.Sleep(time.Until(pausedAt.Add(outage - 2*time.Second)))
	var live []string
	for _, n := range []string{"node1", "node2"} {
		if err := rapiHealth(ctx, lab, n, "/livez"); err != nil {
			t.Errorf("%s /livez failed near the end of the outage: %v", n, err)
			live = append(live, n+" failed")
		} else {
			live = append(live, n+" ok")
		}
		if err := rapiAPIReachable(lab.NS(n)); err == nil {
			t.Errorf("API server reachable from %s during its outage", n)
		}
	}
	rapiFigure(t, "agents /livez 2s before the API returned", "%s", strings.Join(live, ", "))

	time.Sleep(time.Until(pausedAt.Add(outage)))
	proxies["node1"].Resume()
	proxies["node2"].Resume()
	resumed := time.Now()
	if node3At == 0 {
		waitFor(t, ctx, "node3 installs a blackhole for its new block", func() (bool, string) {
			out, _ := lab.Run(ctx, "node3", "ip", "route", "show", lateBlock)
			return strings.Contains(out, "blackhole"), out
		})
		rapiFigure(t, "node3 catch-up: blackhole for its new block", "%s after the pod was created (%s after node3's API returned)", rapiSince(time.Since(created)), rapiSince(time.Since(pausedAt.Add(node3Back))))
	}

	// Catch-up: the new pool reaches the NAT table, the status is written
	// again (it could not be during the outage) and counts the new route.
	for _, n := range []string{"node1", "node2"} {
		var natAt, statusAt, readyAt time.Duration
		waitFor(t, ctx, n+" catches up after the outage", func() (bool, string) {
			if natAt == 0 {
				if out, _ := lab.Run(ctx, n, "nft", "list", "table", "ip", "gingham"); strings.Contains(out, "10.247.0.0/16") {
					natAt = time.Since(resumed)
				}
			}
			var info string
			if statusAt == 0 {
				st, err := rapiStatus(ctx, env.Client, n)
				if err == nil && st.LastUpdated != nil && st.LastUpdated.After(pausedAt) && st.RoutesLearned > statusBefore[n].RoutesLearned {
					statusAt = time.Since(resumed)
				}
				info = fmt.Sprintf("status %+v (err %v)", st, err)
			}
			if readyAt == 0 && rapiHealth(ctx, lab, n, "/readyz") == nil {
				readyAt = time.Since(resumed)
			}
			return natAt > 0 && statusAt > 0 && readyAt > 0, fmt.Sprintf("nat %s, status %s, ready %s; %s", natAt, statusAt, readyAt, info)
		})
		rapiFigure(t, n+" catch-up: new pool in the NAT table", "%s after the API returned", rapiSince(natAt))
		rapiFigure(t, n+" catch-up: status rewritten with the new route", "%s after the API returned", rapiSince(statusAt))
		rapiFigure(t, n+" catch-up: /readyz", "%s after the API returned", rapiSince(readyAt))
	}
	if err := labnet.Ping(ctx, pods[0].NetNS, late.IP, 5); err != nil {
		t.Errorf("node1's pod cannot reach the pod created during the outage: %v", err)
	}

	for range 3 {
		r := <-results
		rapiFigure(t, "ping "+r.name, "%d sent, %d received, %d lost (every %s)", r.sent, r.received, r.sent-r.received, pingEvery)
		if r.err != nil || r.sent <= 0 || r.received != r.sent {
			t.Errorf("%s: packets lost across the API outage (err %v):\n%s", r.name, r.err, r.out)
		}
	}
	var dels []string
	restarts := 0
	for _, n := range spec.Nodes {
		d, added := rapiRouteEvents(monitors[n.Name].stop())
		rapiFigure(t, n.Name+" proto-96 route events", "%d deleted, %d added or changed", len(d), added)
		for _, l := range d {
			dels = append(dels, n.Name+": "+l)
		}
		after := rapiRoutes(ctx, t, lab, n.Name)
		for _, r := range before[n.Name] {
			if !slices.Contains(after, r) {
				t.Errorf("%s lost route %q across the outage:\nafter:\n%s", n.Name, r, strings.Join(after, "\n"))
			}
		}
		d2, ok := lab.Daemon(n.Name + "/gingham-node")
		if !ok || d2.PID != pids[n.Name] || !d2.Running() {
			restarts++
			t.Errorf("%s: agent restarted or stopped during the outage (pid %d before)", n.Name, pids[n.Name])
		}
	}
	if len(dels) > 0 {
		t.Errorf("gingham routes deleted during the outage:\n%s", strings.Join(dels, "\n"))
	}
	rapiFigure(t, "agents restarted or stopped", "%d of 3 (PIDs compared before and after)", restarts)

	// No session went down: each is Established since the same moment.
	flaps := 0
	for _, n := range spec.Nodes {
		var st v1.GinghamNodeStatusStatus
		waitFor(t, ctx, n.Name+" status rewritten after the outage", func() (bool, string) {
			var err error
			st, err = rapiStatus(ctx, env.Client, n.Name)
			return err == nil && st.LastUpdated != nil && st.LastUpdated.After(pausedAt.Add(outage)), fmt.Sprint(st, err)
		})
		for _, b := range statusBefore[n.Name].Sessions {
			i := slices.IndexFunc(st.Sessions, func(a v1.BGPSessionStatus) bool { return a.PeerAddress == b.PeerAddress })
			if i < 0 || st.Sessions[i].State != "Established" || !st.Sessions[i].Since.Equal(b.Since) {
				flaps++
				t.Errorf("%s: session to %s went down during the outage: before %+v, after %+v", n.Name, b.PeerAddress, b, st.Sessions)
			}
		}
	}
	rapiFigure(t, "TCP-MD5 mesh sessions that went down", "%d of 6", flaps)
}

// rapiConflist is labnet.DefaultConflist with a lock file per node: nodes
// are separate hosts, so their IPAM plugins do not serialize against each
// other (the default lock file is host-wide, shared by every lab node).
const rapiConflist = `{"cniVersion":"1.0.0","name":"k8s-pod-network","plugins":[` +
	`{"type":{{json .Plugin}},"kubeconfig":{{json .Kubeconfig}},"nodename":{{json .Node}},` +
	`"stateDir":{{json .StateDir}},"lock_file":{{json (printf "%s/ipam.lock" .StateDir)}},"ipam":{{.IPAM}}}]}`

// rapiNetwork is the network name of the conflist: handles are
// <network>.<container ID>.
const rapiNetwork = "k8s-pod-network"

// rapiSandbox creates what a runtime creates before CNI ADD: the Pod
// object (bound to its node) and the sandbox's network namespace.
func rapiSandbox(ctx context.Context, lab *labnet.Lab, c client.Client, node, name, netns string) (*labnet.Pod, error) {
	obj := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{"app": "lab"}},
		Spec: corev1.PodSpec{NodeName: node,
			Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}},
	}
	if err := c.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create pod %s: %w", name, err)
	}
	p := &labnet.Pod{Namespace: "default", Name: name, Node: node, NetNS: lab.NS(netns), ContainerID: rapiContainerID()}
	if err := labnet.AddNetNS(ctx, p.NetNS); err != nil {
		return nil, fmt.Errorf("sandbox of %s: %w", name, err)
	}
	return p, nil
}

var rapiSeq struct {
	sync.Mutex
	n int
}

// rapiContainerID returns a fresh sandbox ID.
func rapiContainerID() string {
	rapiSeq.Lock()
	defer rapiSeq.Unlock()
	rapiSeq.n++
	return fmt.Sprintf("%x%04x", time.Now().UnixNano(), rapiSeq.n)
}

// rapiResultIP reads the pod address from a CNI result.
func rapiResultIP(res []byte) (netip.Addr, error) {
	var r struct {
		IPs []struct {
			Address string `json:"address"`
		} `json:"ips"`
	}
	if err := json.Unmarshal(res, &r); err != nil || len(r.IPs) == 0 {
		return netip.Addr{}, fmt.Errorf("CNI result %s has no IP (%v)", res, err)
	}
	pfx, err := netip.ParsePrefix(r.IPs[0].Address)
	return pfx.Addr(), err
}

// rapiAdd is one CNI ADD that may be killed.
type rapiAdd struct {
	pod *labnet.Pod
	// The kill: delay after the start or, when handle is set, after
	// handle is closed (the pod's IPAMHandle was created).
	delay  time.Duration
	handle <-chan struct{}
	killed bool       // died of the SIGKILL
	ip     netip.Addr // set when the ADD completed
	err    error      // the plugin failed on its own
	start  time.Time
	took   time.Duration
}

// run starts the gingham plugin for the pod, as a runtime does (same
// environment as labnet.Lab.CNI), in its own process group, and kills the
// group (plugin and its gingham-ipam delegate) with SIGKILL at the chosen
// moment unless it finished first. It returns once every process of the
// group is gone.
func (a *rapiAdd) run(lab *labnet.Lab, opts labnet.CNIOptions) {
	a.start = time.Now()
	defer func() { a.took = time.Since(a.start) }()
	list, err := lab.Conflist(a.pod.Node, opts)
	if err != nil {
		a.err = err
		return
	}
	conf, err := rapiPluginConf(list)
	if err != nil {
		a.err = err
		return
	}
	paths := []string{labnet.BinDir(), "/usr/lib/cni", "/opt/cni/bin"}
	cmd := exec.Command("ip", "netns", "exec", lab.NS(a.pod.Node), filepath.Join(labnet.BinDir(), "gingham"))
	cmd.Env = append(os.Environ(),
		"CNI_COMMAND=ADD",
		"CNI_CONTAINERID="+a.pod.ContainerID,
		"CNI_NETNS="+labnet.NetNSPath(a.pod.NetNS),
		"CNI_IFNAME=eth0",
		"CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE="+a.pod.Namespace+";K8S_POD_NAME="+a.pod.Name+";K8S_POD_INFRA_CONTAINER_ID="+a.pod.ContainerID,
		"CNI_PATH="+strings.Join(paths, ":"),
	)
	cmd.Stdin = bytes.NewReader(conf)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		a.err = err
		return
	}
	pgid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var timer <-chan time.Time
	if a.handle == nil {
		timer = time.After(a.delay)
	}
	handle := a.handle
wait:
	for {
		select {
		case err = <-done:
			break wait
		case <-handle:
			handle, timer = nil, time.After(a.delay)
		case <-timer:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			err = <-done
			break wait
		}
	}
	// A delegate forked just before the kill is in the group too.
	for deadline := time.Now().Add(10 * time.Second); rapiGroupAlive(pgid) && time.Now().Before(deadline); {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		time.Sleep(10 * time.Millisecond)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		a.ip, a.err = rapiResultIP(stdout.Bytes())
	case errors.As(err, &ee) && ee.ProcessState.Sys().(syscall.WaitStatus).Signaled():
		a.killed = true
	default:
		a.err = fmt.Errorf("gingham ADD for %s: %w: %s %s", a.pod, err, strings.TrimSpace(stdout.String()), strings.TrimSpace(stderr.String()))
	}
}

// rapiGroupAlive reports whether a process of group pgid is alive (zombies
// left to an init that reaps slowly do not count).
func rapiGroupAlive(pgid int) bool {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]) // state ppid pgrp ...
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" {
			return true
		}
	}
	return false
}

// rapiPluginConf is the first plugin of a conflist as a runtime passes it
// on stdin (name and cniVersion added).
func rapiPluginConf(conflist []byte) ([]byte, error) {
	var list struct {
		CNIVersion string           `json:"cniVersion"`
		Name       string           `json:"name"`
		Plugins    []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(conflist, &list); err != nil || len(list.Plugins) == 0 {
		return nil, fmt.Errorf("parse conflist %s: %v", conflist, err)
	}
	p := list.Plugins[0]
	p["cniVersion"], p["name"] = list.CNIVersion, list.Name
	return json.Marshal(p)
}

// rapiHandleWatch closes a channel when the IPAMHandle of a handle ID is
// created: the kill "after the allocation began" waits on it.
type rapiHandleWatch struct {
	mu      sync.Mutex
	waiters map[string]chan struct{}
	seen    map[string]time.Time
}

func rapiWatchHandles(t *testing.T, ctx context.Context, env *testenv.Env) *rapiHandleWatch {
	t.Helper()
	wc, err := client.NewWithWatch(env.Config, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	hw := &rapiHandleWatch{waiters: map[string]chan struct{}{}, seen: map[string]time.Time{}}
	wctx, stop := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for wctx.Err() == nil {
			// Resource version "0": from the watch cache, existing handles
			// first; a newer version can be refused while that cache lags.
			w, err := wc.Watch(wctx, &v1.IPAMHandleList{}, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: "0"}})
			if err != nil {
				time.Sleep(500 * time.Millisecond)
				continue
			}
			for ev := range w.ResultChan() {
				if h, ok := ev.Object.(*v1.IPAMHandle); ok && ev.Type == watch.Added {
					hw.add(h.Spec.HandleID)
				}
			}
			w.Stop()
		}
	}()
	t.Cleanup(func() { stop(); <-stopped })
	return hw
}

func (hw *rapiHandleWatch) add(handle string) {
	hw.mu.Lock()
	defer hw.mu.Unlock()
	if _, ok := hw.seen[handle]; !ok {
		hw.seen[handle] = time.Now()
	}
	if ch, ok := hw.waiters[handle]; ok {
		close(ch)
		delete(hw.waiters, handle)
	}
}

// created returns a channel closed once handle's IPAMHandle exists.
func (hw *rapiHandleWatch) created(handle string) <-chan struct{} {
	hw.mu.Lock()
	defer hw.mu.Unlock()
	ch := make(chan struct{})
	if _, ok := hw.seen[handle]; ok {
		close(ch)
	} else {
		hw.waiters[handle] = ch
	}
	return ch
}

// at returns when handle's IPAMHandle was seen created (zero: never).
func (hw *rapiHandleWatch) at(handle string) time.Time {
	hw.mu.Lock()
	defer hw.mu.Unlock()
	return hw.seen[handle]
}

// rapiAlloc is one allocated address as the IPAM blocks record it.
type rapiAlloc struct {
	addr        netip.Addr
	handle      string
	ns, podName string
}

// rapiIPAM lists the blocks and handles through the host's client and
// checks the invariants no crash may break: blocks do not overlap, every
// allocation points at a valid attribute, no address is in two blocks and
// no handle holds two addresses.
func rapiIPAM(ctx context.Context, t *testing.T, c client.Client) (map[netip.Addr]rapiAlloc, []v1.IPAMHandle) {
	t.Helper()
	var blocks v1.IPAMBlockList
	if err := c.List(ctx, &blocks); err != nil {
		t.Fatal(err)
	}
	var handles v1.IPAMHandleList
	if err := c.List(ctx, &handles); err != nil {
		t.Fatal(err)
	}
	allocs := map[netip.Addr]rapiAlloc{}
	byHandle := map[string][]netip.Addr{}
	var cidrs []netip.Prefix
	for _, b := range blocks.Items {
		cidr, err := netip.ParsePrefix(b.Spec.CIDR)
		if err != nil {
			t.Errorf("block %s: cidr %q: %v", b.Name, b.Spec.CIDR, err)
			continue
		}
		for _, o := range cidrs {
			if o.Overlaps(cidr) {
				t.Errorf("blocks %s and %s overlap", o, cidr)
			}
		}
		cidrs = append(cidrs, cidr)
		addr := cidr.Masked().Addr()
		for ord, idx := range b.Spec.Allocations {
			if ord > 0 {
				addr = addr.Next()
			}
			if idx == nil {
				continue
			}
			if *idx < 0 || *idx >= len(b.Spec.Attributes) {
				t.Errorf("block %s: %s points at attribute %d of %d", cidr, addr, *idx, len(b.Spec.Attributes))
				continue
			}
			at := b.Spec.Attributes[*idx]
			al := rapiAlloc{addr: addr, ns: at.Secondary["namespace"], podName: at.Secondary["pod"]}
			if at.HandleID != nil {
				al.handle = *at.HandleID
			}
			if prev, dup := allocs[addr]; dup {
				t.Errorf("%s allocated twice: to %q and %q", addr, prev.handle, al.handle)
			}
			allocs[addr] = al
			byHandle[al.handle] = append(byHandle[al.handle], addr)
		}
	}
	for h, addrs := range byHandle {
		if len(addrs) > 1 {
			t.Errorf("handle %q holds %d addresses: %v", h, len(addrs), addrs)
		}
	}
	return allocs, handles.Items
}

// rapiCheck runs ginghamctl ipam check -o json against the lab's API.
func rapiCheck(ctx context.Context, t *testing.T, env *testenv.Env) (problems []map[string]string, exit int) {
	t.Helper()
	cmd := exec.CommandContext(ctx, filepath.Join(labnet.BinDir(), "ginghamctl"), "ipam", "check", "-o", "json")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("ginghamctl ipam check: %v", err)
	}
	exit = cmd.ProcessState.ExitCode()
	var rep struct {
		Problems []map[string]string `json:"problems"`
	}
	if jerr := json.Unmarshal(stdout.Bytes(), &rep); jerr != nil {
		t.Fatalf("ginghamctl ipam check -o json (exit %d): %v:\n%s\n%s", exit, jerr, stdout.String(), stderr.String())
	}
	return rep.Problems, exit
}

// TestReliabilityIPAMKilledAdds runs rounds of concurrent CNI ADDs on a
// three-node mesh (per-node IPAM lock) and SIGKILLs them at random moments,
// half on a timer from the start, half just after their allocation began,
// and one node's gingham-node per round. The runtime's answer to a killed
// ADD is modelled both ways: DEL of the sandbox then a retry with a new one
// (containerd's teardown after a failed setup), or no DEL and the Pod
// deleted (the sandbox's state was lost, e.g. a reboot; only the GC can
// free its address). Then: no address allocated twice, ginghamctl ipam
// check names exactly the leaks, and the leader-elected GC repairs them
// without touching a live pod's address.
func TestReliabilityIPAMKilledAdds(t *testing.T) {
	rounds, perNode := 2, 4
	if rapiLong() {
		rounds, perNode = 10, 6
	}
	const timerKillMax = 1500 * time.Millisecond // an ADD takes ~0.5-1s here
	const handleKillMax = 100 * time.Millisecond
	const grace = 10 * time.Second
	t.Logf("reliability: does: runs %d rounds of %d concurrent gingham CNI ADDs (%d per node, 3 nodes) and SIGKILLs them (plugin and gingham-ipam) at random moments, half 0-%s after start and half 0-%s after their IPAMHandle appears, plus one node's gingham-node per round; killed ADDs get a runtime's DEL and a retry in a new sandbox, or (every other one) no DEL and their Pod deleted; then checks no address is allocated twice, ginghamctl ipam check reports exactly the leaks, and the IPAM GC (grace %s) repairs them while live pods keep their addresses",
		rounds, 3*perNode, perNode, timerKillMax, handleKillMax, grace)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute+time.Duration(rounds)*90*time.Second)
	defer cancel()
	spec := labnet.MeshSpec(labnet.TestPrefix(), runDir(t), 3)
	agentEnv := "GINGHAM_IPAM_GC_GRACE=" + grace.String()
	lab, env := agentLab(t, ctx, spec, agentEnv)
	opts := labnet.CNIOptions{Template: rapiConflist}
	handles := rapiWatchHandles(t, ctx, env)

	live := map[string]*labnet.Pod{} // by pod name
	var baseline []*labnet.Pod
	for _, n := range spec.Nodes {
		p, err := lab.CreatePod(ctx, env.Client, labnet.PodRequest{Node: n.Name, Namespace: "default", Name: n.Name + "-base", CNI: opts})
		if err != nil {
			t.Fatal(err)
		}
		baseline = append(baseline, p)
		live[p.Name] = p
	}
	requireMatrix(t, ctx, baseline)
	for _, p := range baseline { // the watch is live once it has them
		select {
		case <-handles.created(rapiNetwork + "." + p.ContainerID):
		case <-ctx.Done():
			t.Fatal("IPAMHandle watch never saw the baseline pods' handles")
		}
	}

	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 9))
	rapiFigure(t, "random seed", "%d", seed)
	var (
		started, completed, killedTimer, killedHandle, killedEarly, retried, failed, agentKills int
		abandoned                                                                               []*labnet.Pod // killed, no DEL; Pod deleted at the end
		took, toHandle                                                                          []time.Duration
	)
	for r := range rounds {
		var adds []*rapiAdd
		for _, n := range spec.Nodes {
			for i := range perNode {
				name := fmt.Sprintf("k%d-%s-%d", r, n.Name, i)
				p, err := rapiSandbox(ctx, lab, env.Client, n.Name, name, "pod-"+name)
				if err != nil {
					t.Fatal(err)
				}
				a := &rapiAdd{pod: p}
				// Half die on a timer from their start, half once their
				// allocation has begun (handle written, block next).
				if len(adds)%2 == 0 {
					a.delay = time.Duration(rng.Int64N(int64(timerKillMax)))
				} else {
					a.delay = time.Duration(rng.Int64N(int64(handleKillMax)))
					a.handle = handles.created(rapiNetwork + "." + p.ContainerID)
				}
				adds = append(adds, a)
			}
		}
		victim := spec.Nodes[rng.IntN(len(spec.Nodes))].Name
		agentDelay := time.Duration(rng.Int64N(int64(timerKillMax)))
		var wg sync.WaitGroup
		for _, a := range adds {
			wg.Add(1)
			go func() { defer wg.Done(); a.run(lab, opts) }()
		}
		started += len(adds)
		time.Sleep(agentDelay)
		if d, ok := lab.Daemon(victim + "/gingham-node"); ok {
			if err := d.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-d.Exited()
			agentKills++
		}
		wg.Wait()
		if _, err := lab.StartAgent(victim, "", agentEnv); err != nil {
			t.Fatal(err)
		}

		for _, a := range adds {
			at := handles.at(rapiNetwork + "." + a.pod.ContainerID)
			if !at.IsZero() {
				toHandle = append(toHandle, at.Sub(a.start))
			}
			if a.killed && at.IsZero() {
				killedEarly++
			}
			switch {
			case a.err != nil:
				failed++
				t.Errorf("ADD failed without being killed: %v", a.err)
				continue
			case !a.killed:
				completed++
				took = append(took, a.took)
				a.pod.IP = a.ip
				live[a.pod.Name] = a.pod
				continue
			case a.handle == nil:
				killedTimer++
			default:
				killedHandle++
			}
			if (killedTimer+killedHandle)%2 == 0 {
				abandoned = append(abandoned, a.pod)
				continue
			}
			// The runtime tears the failed sandbox down (DEL, same
			// container ID), then kubelet retries with a new sandbox.
			if _, err := lab.CNI(ctx, "DEL", a.pod, opts); err != nil {
				t.Errorf("DEL after a killed ADD: %v", err)
			}
			if err := labnet.DeleteNetNS(ctx, a.pod.NetNS); err != nil {
				t.Fatal(err)
			}
			p := &labnet.Pod{Namespace: a.pod.Namespace, Name: a.pod.Name, Node: a.pod.Node,
				NetNS: lab.NS("pod-" + a.pod.Name + "-s2"), ContainerID: rapiContainerID()}
			if err := labnet.AddNetNS(ctx, p.NetNS); err != nil {
				t.Fatal(err)
			}
			res, err := lab.CNI(ctx, "ADD", p, opts)
			if err != nil {
				t.Fatalf("retried ADD after a killed one: %v", err)
			}
			if p.IP, err = rapiResultIP(res); err != nil {
				t.Fatal(err)
			}
			retried++
			live[p.Name] = p
		}
		waitReady(t, ctx, lab)
	}
	rapiFigure(t, "ADDs started", "%d in %d rounds", started, rounds)
	rapiFigure(t, "ADDs killed", "%d on the timer (0-%s), %d after their handle appeared (0-%s)", killedTimer, timerKillMax, killedHandle, handleKillMax)
	rapiFigure(t, "killed ADDs that had not written their IPAMHandle yet", "%d", killedEarly)
	rapiFigure(t, "ADDs completed before their kill", "%d (median %s)", completed, rapiMedian(took))
	rapiFigure(t, "time from ADD start to its IPAMHandle", "median %s (%d ADDs got that far)", rapiMedian(toHandle), len(toHandle))
	rapiFigure(t, "killed ADDs DEL'd and retried in a new sandbox", "%d, all succeeded", retried)
	rapiFigure(t, "killed ADDs abandoned (no DEL, Pod deleted)", "%d", len(abandoned))
	rapiFigure(t, "gingham-node SIGKILLs during the ADDs", "%d", agentKills)
	rapiFigure(t, "ADDs failed without a kill", "%d", failed)

	// No address twice: the blocks hold each once, live pods all differ
	// and each holds its address under its own handle.
	allocs, _ := rapiIPAM(ctx, t, env.Client)
	rapiCheckLive(t, live, allocs)
	rapiFigure(t, "duplicate addresses", "0 expected; %d allocations and %d live pods checked", len(allocs), len(live))

	// The abandoned sandboxes' Pods go away; what their ADDs allocated is
	// now leaked, and ipam check must say so.
	gone := map[string]bool{}
	for _, p := range abandoned {
		// Grace 0, as kubelet's final delete: with no kubelet in the lab
		// a graceful delete would leave the Pod terminating forever.
		if err := env.Client.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name}}, client.GracePeriodSeconds(0)); err != nil {
			t.Fatal(err)
		}
		if err := labnet.DeleteNetNS(ctx, p.NetNS); err != nil {
			t.Fatal(err)
		}
		gone[p.Name] = true
	}
	deleted := time.Now()
	allocs, hs := rapiIPAM(ctx, t, env.Client)
	problems, exit := rapiCheck(ctx, t, env)
	checkTook := time.Since(deleted)
	wantLeaks := map[string]bool{}
	for _, al := range allocs {
		if gone[al.podName] {
			wantLeaks[al.addr.String()] = true
		}
	}
	held := map[string]bool{}
	for _, al := range allocs {
		held[al.handle] = true
	}
	abandonedHandle := map[string]bool{}
	for _, p := range abandoned {
		abandonedHandle[rapiNetwork+"."+p.ContainerID] = true
	}
	emptyHandles := map[string]bool{} // IPAMHandle/<name> of handles holding nothing
	for _, h := range hs {
		if !held[h.Spec.HandleID] {
			emptyHandles["IPAMHandle/"+h.Name] = true
			if !abandonedHandle[h.Spec.HandleID] {
				t.Errorf("handle %s holds no address but belongs to no abandoned ADD", h.Spec.HandleID)
			}
		}
	}
	gotLeaks := map[string]bool{}
	var handleProblems int
	for _, p := range problems {
		switch p["type"] {
		case "leaked-ip":
			gotLeaks[p["ip"]] = true
		case "orphan-handle", "handle-mismatch":
			handleProblems++
			if !emptyHandles[p["object"]] {
				t.Errorf("ipam check: %s on %s, not an empty handle of an abandoned ADD: %v", p["type"], p["object"], p)
			}
		default:
			t.Errorf("ipam check: unexpected problem %v", p)
		}
	}
	if !maps.Equal(gotLeaks, wantLeaks) {
		t.Errorf("ipam check leaked-ip %v, want %v (allocations of the deleted pods)", slices.Sorted(maps.Keys(gotLeaks)), slices.Sorted(maps.Keys(wantLeaks)))
	}
	if wantExit := map[bool]int{true: 1, false: 0}[len(wantLeaks)+handleProblems > 0]; exit != wantExit {
		t.Errorf("ginghamctl ipam check exited %d, want %d: %v", exit, wantExit, problems)
	}
	rapiFigure(t, "leaks reported by ginghamctl ipam check", "%d leaked addresses, %d empty handles (%d empty handles in the API; exit %d, %s after the Pods were deleted)",
		len(gotLeaks), handleProblems, len(emptyHandles), exit, rapiSince(checkTook))
	if len(wantLeaks)+len(emptyHandles) == 0 {
		t.Log("no kill in this run left a leak; the GC has nothing to repair")
	}

	// The GC repairs them: ipam check passes, the leaked addresses are
	// free, live pods keep theirs.
	var repaired time.Duration
	waitFor(t, ctx, "IPAM GC repairs the leaks", func() (bool, string) {
		problems, exit := rapiCheck(ctx, t, env)
		repaired = time.Since(deleted)
		return exit == 0, fmt.Sprint(problems)
	})
	rapiFigure(t, "IPAM GC repair time", "%s after the Pods were deleted (grace %s)", rapiSince(repaired), grace)
	allocs, _ = rapiIPAM(ctx, t, env.Client)
	for ip := range wantLeaks {
		if al, ok := allocs[netip.MustParseAddr(ip)]; ok && gone[al.podName] {
			t.Errorf("leaked %s still allocated to %s after the GC", ip, al.podName)
		}
	}
	rapiCheckLive(t, live, allocs)
	lost := 0
	for _, p := range live {
		if p == baseline[0] {
			continue
		}
		if err := labnet.Ping(ctx, baseline[0].NetNS, p.IP, 3); err != nil {
			lost++
			t.Errorf("live pod %s (%s) unreachable after the GC: %v", p, p.IP, err)
		}
	}
	rapiFigure(t, "live pods reachable after the GC", "%d of %d", len(live)-1-lost, len(live)-1)
}

// rapiCheckLive checks that live pods have distinct addresses, each held
// by the pod's own handle.
func rapiCheckLive(t *testing.T, live map[string]*labnet.Pod, allocs map[netip.Addr]rapiAlloc) {
	t.Helper()
	byIP := map[netip.Addr]string{}
	for _, p := range live {
		if prev, dup := byIP[p.IP]; dup {
			t.Errorf("pods %s and %s both have %s", prev, p.Name, p.IP)
		}
		byIP[p.IP] = p.Name
		al, ok := allocs[p.IP]
		switch {
		case !ok:
			t.Errorf("live pod %s lost its address %s", p, p.IP)
		case al.handle != rapiNetwork+"."+p.ContainerID || al.podName != p.Name:
			t.Errorf("live pod %s's address %s is held by handle %q (pod %q)", p, p.IP, al.handle, al.podName)
		}
	}
}

func rapiMedian(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return rapiSince(s[len(s)/2])
}
