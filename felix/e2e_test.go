package felix_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gingham-net/gingham/cni/attach/attachtest"
	"github.com/gingham-net/gingham/felix"
	"github.com/gingham-net/gingham/felix/nat"
	"github.com/gingham-net/gingham/internal/netlinkx"
	"github.com/gingham-net/gingham/internal/netns"
	"github.com/gingham-net/gingham/internal/netns/netnstest"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	attachtest.ServeIfPlugin()
	os.Exit(m.Run())
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v: %s", args, err, out)
	}
	return string(out)
}

// serveEcho accepts on addr inside ns and writes back the peer's address.
func serveEcho(t *testing.T, ns *netns.NS, addr string) {
	var ln net.Listener
	if err := ns.Do(func() (err error) { ln, err = net.Listen("tcp4", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprint(c, c.RemoteAddr().String())
			c.Close()
		}
	}()
}

func dialEcho(ns *netns.NS, addr string) (string, error) {
	var got string
	err := ns.Do(func() error {
		c, err := net.DialTimeout("tcp4", addr, 3*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		b, err := io.ReadAll(c)
		got = string(b)
		return err
	})
	return got, err
}

type routeKey struct {
	dst   netip.Prefix
	proto int
}

func routesOf(t *testing.T, h *netlinkx.Handle) map[routeKey]netlinkx.Route {
	t.Helper()
	rs, err := h.RouteList(netlinkx.RouteFilter{})
	if err != nil {
		t.Fatal(err)
	}
	m := map[routeKey]netlinkx.Route{}
	for _, r := range rs {
		m[routeKey{r.Dst, r.Protocol}] = r
	}
	return m
}

// TestPrivilegedPodNetworking: one fake host namespace, three pods attached
// by the CNI plugin exactly as a runtime calls it, an "outside" namespace
// behind the host's uplink, and the dataplane programming the host.
func TestPrivilegedPodNetworking(t *testing.T) {
	netnstest.Privileged(t)
	host := netnstest.New(t, "h")
	outside := netnstest.New(t, "o")
	hn, on := netnstest.Name(host), netnstest.Name(outside)
	run(t, "ip", "-n", hn, "link", "add", "uplink", "type", "veth", "peer", "name", "eth0", "netns", on)
	run(t, "ip", "-n", hn, "addr", "add", "10.99.0.1/24", "dev", "uplink")
	run(t, "ip", "-n", hn, "link", "set", "uplink", "up")
	run(t, "ip", "-n", hn, "link", "set", "lo", "up")
	run(t, "ip", "-n", on, "addr", "add", "10.99.0.2/24", "dev", "eth0")
	run(t, "ip", "-n", on, "link", "set", "eth0", "up")
	// The uplink is the default route, as on a real node (proxy ARP answers
	// for 169.254.1.1 because it is routed out of another interface).
	run(t, "ip", "-n", hn, "route", "add", "default", "via", "10.99.0.2", "proto", "static")

	// Routes other owners planted: they must survive everything below.
	run(t, "ip", "-n", hn, "route", "add", "10.50.0.0/24", "via", "10.99.0.2", "proto", "static")
	run(t, "ip", "-n", hn, "route", "add", "10.51.0.0/24", "dev", "uplink", "proto", "bird")
	run(t, "ip", "-n", hn, "route", "add", "10.52.0.0/24", "dev", "uplink", "proto", "kernel")
	run(t, "ip", "-n", hn, "route", "add", "blackhole", "10.53.0.0/24", "proto", "static")

	stateDir := t.TempDir()
	if err := felix.WriteMTU(stateDir, felix.PodMTU(1500, 0, false)); err != nil {
		t.Fatal(err)
	}
	conf := []byte(fmt.Sprintf(`{"cniVersion":"1.0.0","name":"k8s-pod-network","type":"gingham","stateDir":%q,
		"ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":"10.244.0.0/26"}]]}}`, stateDir, filepath.Join(stateDir, "ipam")))
	plugin := attachtest.Self(host)
	type pod struct {
		ns *netns.NS
		ip netip.Addr
	}
	var pods []pod
	for i := range 3 {
		ns := netnstest.New(t, "p")
		out, err := plugin.Run(attachtest.Call{Command: "ADD", ContainerID: fmt.Sprintf("c%d", i), Netns: ns.Path(), IfName: "eth0",
			Args: attachtest.PodArgs("default", fmt.Sprintf("pod%d", i)), Conf: conf})
		if err != nil {
			t.Fatal(err)
		}
		var res struct {
			IPs []struct{ Address string } `json:"ips"`
		}
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatal(err)
		}
		pods = append(pods, pod{ns, netip.MustParsePrefix(res.IPs[0].Address).Addr()})
	}

	// A restarted agent learns its pods from the kernel.
	eps, err := felix.DiscoverEndpoints(host, "cali")
	if err != nil || len(eps) != 3 {
		t.Fatalf("DiscoverEndpoints = %+v, %v", eps, err)
	}
	for _, ep := range eps {
		if len(ep.MAC) != 6 {
			t.Errorf("endpoint %+v has no MAC", ep)
		}
	}
	mtu, iface, err := felix.DetectHostMTU(host, netip.MustParseAddr("10.99.0.1"))
	if err != nil || mtu != 1500 || iface != "uplink" {
		t.Errorf("DetectHostMTU = %d, %q, %v", mtu, iface, err)
	}

	blocks := []netip.Prefix{netip.MustParsePrefix("10.244.0.0/26")}
	remote := []felix.Route{
		{Prefix: netip.MustParsePrefix("10.245.1.0/26"), NextHops: []felix.NextHop{{Iface: "uplink", Gw: netip.MustParseAddr("10.99.0.2")}}},
		{Prefix: netip.MustParsePrefix("10.245.2.0/26"), NextHops: []felix.NextHop{
			{Iface: "uplink", Gw: netip.MustParseAddr("10.99.0.3")}, {Iface: "uplink", Gw: netip.MustParseAddr("10.99.0.2")}}},
	}
	pools := []nat.Pool{{CIDR: netip.MustParsePrefix("10.244.0.0/16"), NATOutgoing: true}}

	startWith := func(remote []felix.Route, complete bool) (*felix.Dataplane, context.Context, context.CancelFunc, chan felix.Report, chan struct{}) {
		reports := make(chan felix.Report, 64)
		d, err := felix.New(felix.WithNetNS(host), felix.WithMinApplyInterval(20*time.Millisecond),
			felix.WithResyncInterval(time.Hour), felix.WithOnApply(func(r felix.Report) { reports <- r }))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = d.Run(ctx) }()
		for _, err := range []error{d.SetLocalEndpoints(ctx, eps), d.SetLocalBlocks(ctx, blocks), d.SetRemoteRoutes(ctx, remote, complete), d.SetNATPools(ctx, pools)} {
			if err != nil {
				t.Fatal(err)
			}
		}
		return d, ctx, func() { cancel(); <-done }, reports, done
	}
	start := func() (context.CancelFunc, chan felix.Report, chan struct{}) {
		_, _, stop, reports, done := startWith(remote, true)
		return stop, reports, done
	}

	hh, err := netlinkx.Open(host.Fd())
	if err != nil {
		t.Fatal(err)
	}
	defer hh.Close()
	before := routesOf(t, hh)
	for k := range before {
		if k.proto == 96 {
			delete(before, k) // the CNI's /32s
		}
	}

	stop, reports, _ := start()
	first := waitReport(t, reports)
	if first.Err != nil {
		t.Fatalf("first apply: %v", first.Err)
	}
	// The CNI's three /32s are adopted, the blackhole and two learned routes added.
	if r := first.Routes; r.Unchanged != 3 || r.Replaced != 3 || r.Deleted != 0 {
		t.Errorf("first apply = %+v, want 3 adopted, 3 added", r)
	}

	t.Run("pod to pod ping and TCP", func(t *testing.T) {
		run(t, "ip", "netns", "exec", netnstest.Name(pods[0].ns), "busybox", "ping", "-c1", "-W2", pods[1].ip.String())
		serveEcho(t, pods[1].ns, pods[1].ip.String()+":8080")
		got, err := dialEcho(pods[2].ns, pods[1].ip.String()+":8080")
		if err != nil || !strings.HasPrefix(got, pods[2].ip.String()+":") {
			t.Fatalf("pod2 → pod1 TCP: peer %q, %v", got, err)
		}
	})
	t.Run("pod to host", func(t *testing.T) {
		run(t, "ip", "netns", "exec", netnstest.Name(pods[0].ns), "busybox", "ping", "-c1", "-W2", "10.99.0.1")
	})
	t.Run("pod to outside is masqueraded", func(t *testing.T) {
		serveEcho(t, outside, "10.99.0.2:8081")
		got, err := dialEcho(pods[0].ns, "10.99.0.2:8081")
		if err != nil || !strings.HasPrefix(got, "10.99.0.1:") {
			t.Fatalf("outside saw peer %q (%v), want the host's 10.99.0.1", got, err)
		}
	})
	t.Run("pod resolves its gateway to ee:ee:ee:ee:ee:ee", func(t *testing.T) {
		out := run(t, "ip", "-n", netnstest.Name(pods[0].ns), "neigh", "show", "169.254.1.1")
		if !strings.Contains(out, "ee:ee:ee:ee:ee:ee") {
			t.Fatalf("neighbour table: %q", out)
		}
	})

	// Several resyncs: foreign routes untouched, nothing of ours rewritten.
	d2 := routesOf(t, hh)
	for i := 0; i < 3; i++ {
		stopR := resyncVia(t, reports, host)
		_ = stopR
	}
	after := routesOf(t, hh)
	for k, r := range before {
		if a, ok := after[k]; !ok || !equalRoute(a, r) {
			t.Errorf("foreign route %v changed: before %+v after %+v", k, r, a)
		}
	}
	for k := range d2 {
		if _, ok := after[k]; !ok {
			t.Errorf("route %v vanished during resyncs", k)
		}
	}

	// Restart: stop (like kill -9, nothing is cleaned up), watch route events,
	// start a new instance: no delete or add for unchanged routes.
	stop()
	if got := routesOf(t, hh); len(got) != len(after) {
		t.Errorf("routes changed while the agent was down: %d → %d", len(after), len(got))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watch, err := netlinkx.Open(host.Fd())
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	evs := make(chan netlinkx.Event, 1024)
	if err := watch.Subscribe(ctx, evs); err != nil {
		t.Fatal(err)
	}
	stop2, reports2, _ := start()
	defer stop2()
	rep := waitReport(t, reports2)
	if rep.Err != nil || rep.Routes.Replaced != 0 || rep.Routes.Deleted != 0 || rep.Routes.Unchanged != 6 {
		t.Errorf("apply after restart = %+v, %v; want 6 unchanged, nothing written", rep.Routes, rep.Err)
	}
	time.Sleep(300 * time.Millisecond)
	for len(evs) > 0 {
		ev := <-evs
		// The kernel keeps adding its own local-table routes (the veths'
		// IPv6 link-local addresses finish DAD at any time): not ours, not
		// something the agent could have written.
		if ev.Kind == netlinkx.EventRoute && ev.Route.Table != unix.RT_TABLE_LOCAL && ev.Route.Dst.Addr().Is4() {
			t.Errorf("route event after restart: deleted=%v %+v", ev.Deleted, ev.Route)
		}
	}

	// Restart with a partial learned set (a peer's table not in yet): the
	// route learned so far is kept, the other learned route is not deleted
	// though missing, local routes stay; the complete set deletes it.
	stop2()
	d3, ctx3, stop3, reports3, _ := startWith(remote[:1], false)
	defer stop3()
	if rep := waitReport(t, reports3); rep.Err != nil || rep.Routes.Deleted != 0 || rep.Routes.Kept != 1 || rep.Routes.Unchanged != 5 {
		t.Errorf("apply with a partial learned set = %+v, %v; want 5 unchanged, 1 kept, nothing deleted", rep.Routes, rep.Err)
	}
	if err := d3.SetRemoteRoutes(ctx3, remote[:1], true); err != nil {
		t.Fatal(err)
	}
	if rep := waitReport(t, reports3); rep.Err != nil || rep.Routes.Deleted != 1 || rep.Routes.Kept != 0 {
		t.Errorf("apply with the complete learned set = %+v, %v; want the route no longer learned deleted", rep.Routes, rep.Err)
	}
	if _, ok := routesOf(t, hh)[routeKey{remote[1].Prefix, 96}]; ok {
		t.Errorf("%s not learned any more but still in the kernel", remote[1].Prefix)
	}

	// DEL every pod: veths, /32s gone; the agent's next apply deletes nothing foreign.
	for i, p := range pods {
		if _, err := plugin.Run(attachtest.Call{Command: "DEL", ContainerID: fmt.Sprintf("c%d", i), Netns: p.ns.Path(), IfName: "eth0",
			Args: attachtest.PodArgs("default", fmt.Sprintf("pod%d", i)), Conf: conf}); err != nil {
			t.Fatal(err)
		}
	}
	final := routesOf(t, hh)
	for k := range before {
		if _, ok := final[k]; !ok {
			t.Errorf("foreign route %v gone after pod deletion", k)
		}
	}
	for _, p := range pods {
		if _, ok := final[routeKey{netip.PrefixFrom(p.ip, 32), 96}]; ok {
			t.Errorf("pod route %s survived DEL", p.ip)
		}
	}
}

// resyncVia forces a full resync by waiting on a fresh apply triggered by a
// link event in the host namespace (a throwaway veth pair).
func resyncVia(t *testing.T, reports chan felix.Report, host *netns.NS) bool {
	t.Helper()
	n := netnstest.Name(host)
	run(t, "ip", "-n", n, "link", "add", "tmpa", "type", "veth", "peer", "name", "tmpb")
	run(t, "ip", "-n", n, "link", "del", "tmpa")
	r := waitReport(t, reports)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if r.Routes.Deleted != 0 || r.Routes.Replaced != 0 {
		t.Errorf("resync changed routes: %+v", r.Routes)
	}
	// Drain reports triggered by the same burst.
	time.Sleep(50 * time.Millisecond)
	for len(reports) > 0 {
		<-reports
	}
	return true
}

func waitReport(t *testing.T, reports chan felix.Report) felix.Report {
	t.Helper()
	select {
	case r := <-reports:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no apply within 10s")
	}
	return felix.Report{}
}

func equalRoute(a, b netlinkx.Route) bool {
	return a.Dst == b.Dst && a.Protocol == b.Protocol && a.Type == b.Type && a.Path == b.Path && slices.Equal(a.MultiPath, b.MultiPath)
}
