package gobgp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/gingham-net/gingham/api/model"
	"github.com/gingham-net/gingham/bgp"
)

// testNode is one in-process speaker on a 127.0.0.x address.
type testNode struct {
	name string
	addr netip.Addr
	port uint16
	asn  uint32
	sp   *Speaker
}

func freePort(t *testing.T, addr netip.Addr) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

func startNode(t *testing.T, name, addr string, asn uint32) *testNode {
	t.Helper()
	n := &testNode{name: name, addr: netip.MustParseAddr(addr), asn: asn}
	n.port = freePort(t, n.addr)
	n.sp = New(Options{SocketPath: t.TempDir() + "/bgp.sock"})
	err := n.sp.Start(context.Background(), bgp.GlobalConfig{RouterID: n.addr, ASN: asn, ListenPort: int32(n.port), ListenAddrs: []netip.Addr{n.addr}})
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() { _ = n.sp.Stop(context.Background(), true) })
	return n
}

// peerOf is n's session with o, with test timers.
func (n *testNode) peerOf(o *testNode) bgp.PeerConfig {
	return bgp.PeerConfig{
		Address: o.addr, Port: o.port, ASN: o.asn, LocalASN: n.asn, Type: bgp.PeerTypeMesh, Node: o.name,
		Passive: n.addr.Compare(o.addr) > 0, SourceAddr: n.addr,
		Keepalive: time.Second, Hold: 3 * time.Second, ConnectRetry: time.Second, RestartTime: 30 * time.Second,
	}
}

func path(prefix string, nh netip.Addr) bgp.Path {
	return bgp.Path{Prefix: netip.MustParsePrefix(prefix), NextHop: nh}
}

func reconcile(t *testing.T, n *testNode, d bgp.Desired) {
	t.Helper()
	if err := n.sp.Reconcile(context.Background(), d); err != nil {
		t.Fatalf("reconcile %s: %v", n.name, err)
	}
}

// waitLearned waits until n's learned set equals want (prefix → next hops).
func waitLearned(t *testing.T, n *testNode, want map[string][]string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var got map[string][]string
	for time.Now().Before(deadline) {
		got = map[string][]string{}
		for _, r := range n.sp.Learned().Routes {
			for _, nh := range r.NextHops {
				got[r.Prefix.String()] = append(got[r.Prefix.String()], nh.String())
			}
		}
		if fmt.Sprint(got) == fmt.Sprint(want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s learned %v, want %v", n.name, got, want)
}

func waitEstablished(t *testing.T, n *testNode, count int) []bgp.SessionStatus {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var ss []bgp.SessionStatus
	for time.Now().Before(deadline) {
		var err error
		if ss, err = n.sp.Sessions(context.Background()); err != nil {
			t.Fatal(err)
		}
		up := 0
		for _, s := range ss {
			if s.State == bgp.StateEstablished {
				up++
			}
		}
		if up == count {
			return ss
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s sessions %+v, want %d established", n.name, ss, count)
	return nil
}

// TestMeshExchange runs three speakers in an iBGP mesh as a sequence of
// steps whose state carries over.
func TestMeshExchange(t *testing.T) {
	a := startNode(t, "a", "127.0.0.1", 64512)
	b := startNode(t, "b", "127.0.0.2", 64512)
	c := startNode(t, "c", "127.0.0.3", 64512)
	da := bgp.Desired{Peers: []bgp.PeerConfig{a.peerOf(b), a.peerOf(c)}, Paths: []bgp.Path{path("10.244.0.0/26", a.addr)}}
	db := bgp.Desired{Peers: []bgp.PeerConfig{b.peerOf(a), b.peerOf(c)}, Paths: []bgp.Path{path("10.244.1.0/26", b.addr)}}
	dc := bgp.Desired{Peers: []bgp.PeerConfig{c.peerOf(a), c.peerOf(b)}}
	reconcile(t, a, da)
	reconcile(t, b, db)
	reconcile(t, c, dc)

	t.Run("paths exchanged", func(t *testing.T) {
		waitLearned(t, c, map[string][]string{"10.244.0.0/26": {"127.0.0.1"}, "10.244.1.0/26": {"127.0.0.2"}}, 15*time.Second)
		waitLearned(t, a, map[string][]string{"10.244.1.0/26": {"127.0.0.2"}}, 5*time.Second)
	})
	t.Run("reconciling again is a no-op", func(t *testing.T) {
		before := waitEstablished(t, c, 2)
		uuids := map[netip.Prefix][16]byte{}
		for k, v := range a.sp.paths {
			uuids[k] = v.uuid
		}
		for range 2 {
			reconcile(t, a, da)
			reconcile(t, c, dc)
		}
		for k, v := range a.sp.paths {
			if uuids[k] != v.uuid {
				t.Errorf("path %v re-added", k)
			}
		}
		after := waitEstablished(t, c, 2)
		for i := range before {
			if !before[i].Since.Equal(after[i].Since) || before[i].Flaps != after[i].Flaps {
				t.Errorf("session %v reset: %+v -> %+v", before[i].Peer, before[i], after[i])
			}
		}
	})
	t.Run("sessions report type and counters", func(t *testing.T) {
		ss := waitEstablished(t, c, 2)
		if ss[0].Type != bgp.PeerTypeMesh || ss[0].Node != "a" || ss[0].Accepted != 1 {
			t.Errorf("session %+v", ss[0])
		}
	})
	t.Run("withdrawn path disappears", func(t *testing.T) {
		da.Paths = nil
		reconcile(t, a, da)
		waitLearned(t, c, map[string][]string{"10.244.1.0/26": {"127.0.0.2"}}, 5*time.Second)
	})
	t.Run("removed peer's routes go; iBGP routes are not re-advertised by a", func(t *testing.T) {
		dc.Peers = []bgp.PeerConfig{c.peerOf(a)}
		db.Peers = []bgp.PeerConfig{b.peerOf(a)}
		reconcile(t, c, dc)
		reconcile(t, b, db)
		waitLearned(t, c, map[string][]string{}, 5*time.Second)
		waitLearned(t, a, map[string][]string{"10.244.1.0/26": {"127.0.0.2"}}, 5*time.Second)
	})
	t.Run("changed peer config resets only that session", func(t *testing.T) {
		before := waitEstablished(t, a, 2)
		pc := a.peerOf(c)
		pc.RestartTime = 20 * time.Second
		da.Peers = []bgp.PeerConfig{a.peerOf(b), pc}
		reconcile(t, a, da)
		after := waitEstablished(t, a, 2)
		if !before[0].Since.Equal(after[0].Since) {
			t.Errorf("unrelated session with b was reset")
		}
	})
}

// TestPoolRoutesFromExternalPeers checks the import policy: an external
// peer's routes inside our pools are refused unless it may send them.
func TestPoolRoutesFromExternalPeers(t *testing.T) {
	tor := startNode(t, "tor", "127.0.0.11", 65000)
	n := startNode(t, "n", "127.0.0.12", 64512)
	reconcile(t, tor, bgp.Desired{
		Peers: []bgp.PeerConfig{tor.peerOf(n)},
		Paths: []bgp.Path{path("10.244.7.0/26", tor.addr), path("192.168.0.0/24", tor.addr)},
	})
	ext := n.peerOf(tor)
	ext.Node, ext.Type = "", bgp.PeerTypeGlobal
	pools := []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}
	reconcile(t, n, bgp.Desired{Peers: []bgp.PeerConfig{ext}, PoolCIDRs: pools})
	waitLearned(t, n, map[string][]string{"192.168.0.0/24": {"127.0.0.11"}}, 15*time.Second)

	ext.AllowPoolRoutes = true
	reconcile(t, n, bgp.Desired{Peers: []bgp.PeerConfig{ext}, PoolCIDRs: pools})
	waitLearned(t, n, map[string][]string{"10.244.7.0/26": {"127.0.0.11"}, "192.168.0.0/24": {"127.0.0.11"}}, 15*time.Second)
}

func TestStop(t *testing.T) {
	for _, tc := range []struct {
		name     string
		withdraw bool
		wantKept bool
	}{
		{name: "graceful stop: peer keeps our routes as stale", withdraw: false, wantKept: true},
		{name: "withdrawing stop: Cease, peer drops our routes", withdraw: true, wantKept: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.withdraw && raceEnabled {
				// GoBGP v4.8.0 marks the helper's Adj-RIB-In paths stale
				// (table.Path.MarkStale) while its WatchEvent goroutine
				// reads the same flag: an upstream data race.
				t.Skip("upstream GoBGP data race in graceful-restart helper; run without -race")
			}
			a := startNode(t, "a", "127.0.0.21", 64512)
			b := startNode(t, "b", "127.0.0.22", 64512)
			reconcile(t, a, bgp.Desired{Peers: []bgp.PeerConfig{a.peerOf(b)}, Paths: []bgp.Path{path("10.244.2.0/26", a.addr)}})
			reconcile(t, b, bgp.Desired{Peers: []bgp.PeerConfig{b.peerOf(a)}})
			waitLearned(t, b, map[string][]string{"10.244.2.0/26": {"127.0.0.21"}}, 15*time.Second)
			if err := a.sp.Stop(context.Background(), tc.withdraw); err != nil {
				t.Fatalf("stop: %v", err)
			}
			time.Sleep(4 * time.Second) // beyond the 3s hold time
			got := b.sp.Learned().Routes
			if kept := len(got) == 1; kept != tc.wantKept {
				t.Fatalf("after stop b learned %+v, want kept=%v", got, tc.wantKept)
			}
		})
	}
}

// TestReconcileRefusesUnresolvedPassword: a session whose secret was not
// read would never establish; it is reported, not configured.
func TestReconcileRefusesUnresolvedPassword(t *testing.T) {
	a := startNode(t, "a", "127.0.0.31", 64512)
	pc := bgp.PeerConfig{Address: netip.MustParseAddr("127.0.0.32"), ASN: 64512, PasswordRef: model.SecretRef{Name: "s", Key: "k"}}
	err := a.sp.Reconcile(context.Background(), bgp.Desired{Peers: []bgp.PeerConfig{pc}})
	if err == nil {
		t.Fatal("want an error")
	}
	if ss, _ := a.sp.Sessions(context.Background()); len(ss) != 0 {
		t.Errorf("sessions %+v, want none", ss)
	}
}

func TestNoGoroutineLeakAfterStop(t *testing.T) {
	base := runtime.NumGoroutine()
	for i := range 2 {
		a := New(Options{SocketPath: t.TempDir() + "/bgp.sock"})
		addr := netip.MustParseAddr("127.0.0.41")
		if err := a.Start(context.Background(), bgp.GlobalConfig{RouterID: addr, ASN: 64512, ListenPort: int32(freePort(t, addr)), ListenAddrs: []netip.Addr{addr}}); err != nil {
			t.Fatal(err)
		}
		pc := bgp.PeerConfig{Address: netip.MustParseAddr("127.0.0.42"), Port: 1, ASN: 64512, ConnectRetry: time.Second, RestartTime: time.Minute}
		if err := a.Reconcile(context.Background(), bgp.Desired{Peers: []bgp.PeerConfig{pc}, Paths: []bgp.Path{path("10.244.3.0/26", addr)}}); err != nil {
			t.Fatal(err)
		}
		if err := a.Stop(context.Background(), i == 0); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after stop, %d before:\n%s", n, base, buf[:runtime.Stack(buf, true)])
	}
}

func TestProbeTCPMD5(t *testing.T) {
	if err := ProbeTCPMD5(); err != nil {
		t.Fatalf("this kernel supports TCP-MD5: %v", err)
	}
}

// TestEndOfRIBDeliveredWithTable: a speaker reports a peer's End-of-RIB in
// the same learned set as the table the peer sent before it, never
// earlier, and forgets it when the session ends.
func TestEndOfRIBDeliveredWithTable(t *testing.T) {
	a := startNode(t, "a", "127.0.0.51", 64512)
	b := &testNode{name: "b", addr: netip.MustParseAddr("127.0.0.52"), asn: 64512}
	b.port = freePort(t, b.addr)
	sets := make(chan bgp.Learned, 64)
	b.sp = New(Options{OnLearned: func(l bgp.Learned) {
		select { // never block the speaker once the test stopped reading
		case sets <- l:
		default:
		}
	}})
	if err := b.sp.Start(context.Background(), bgp.GlobalConfig{RouterID: b.addr, ASN: b.asn, ListenPort: int32(b.port), ListenAddrs: []netip.Addr{b.addr}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.sp.Stop(context.Background(), true) })
	table := []bgp.Path{path("10.244.1.0/26", a.addr), path("10.244.2.0/26", a.addr), path("10.244.3.0/26", a.addr)}
	reconcile(t, a, bgp.Desired{Peers: []bgp.PeerConfig{a.peerOf(b)}, Paths: table})
	reconcile(t, b, bgp.Desired{Peers: []bgp.PeerConfig{b.peerOf(a)}})
	next := func(what string) bgp.Learned {
		t.Helper()
		select {
		case l := <-sets:
			return l
		case <-time.After(20 * time.Second):
			t.Fatalf("no learned set %s within 20s", what)
		}
		return bgp.Learned{}
	}
	for {
		l := next("with a's End-of-RIB")
		if !slices.Contains(l.EndOfRIB, a.addr) {
			continue
		}
		if len(l.Routes) != len(table) {
			t.Fatalf("End-of-RIB from a reported with %d routes, want its whole table of %d", len(l.Routes), len(table))
		}
		break
	}
	if err := a.sp.Stop(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	for {
		if l := next("without a's End-of-RIB after it stopped"); !slices.Contains(l.EndOfRIB, a.addr) {
			return
		}
	}
}
