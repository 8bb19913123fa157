package routetable_test

// Benchmarks B1 and B2 (docs/benchmarks.md): run as root with
//   go test -run '^$' -bench . -benchtime 3x ./felix/routetable/
// Each runs in a throwaway netns on a veth. The reference loop uses the raw
// vishvananda/netlink Handle (test-only import) and iproute2's ip -batch.

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"

	"github.com/gingham-net/gingham/felix/routetable"
	"github.com/gingham-net/gingham/internal/netlinkx"
	"github.com/gingham-net/gingham/internal/netns"
	"github.com/gingham-net/gingham/internal/netns/netnstest"
)

type bench struct {
	ns    *netns.NS
	h     *netlinkx.Handle
	raw   *netlink.Handle
	index int
}

func setup(b *testing.B) *bench {
	netnstest.Privileged(b)
	ns := netnstest.New(b, "b")
	h, err := netlinkx.Open(ns.Fd())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(h.Close)
	n := netnstest.Name(ns)
	if out, err := exec.Command("ip", "-n", n, "link", "add", "bench0", "type", "veth", "peer", "name", "bench1").CombinedOutput(); err != nil {
		b.Fatalf("%v: %s", err, out)
	}
	_ = exec.Command("ip", "-n", n, "link", "set", "bench0", "up").Run()
	_ = exec.Command("ip", "-n", n, "link", "set", "bench1", "up").Run()
	l, err := h.LinkByName("bench0")
	if err != nil {
		b.Fatal(err)
	}
	raw, err := netlink.NewHandleAt(vnetns.NsHandle(ns.Fd()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(raw.Close)
	return &bench{ns: ns, h: h, raw: raw, index: l.Index}
}

func addrN(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

func targets(n, mtu int) []routetable.Target {
	ts := make([]routetable.Target, n)
	for i := range ts {
		ts[i] = routetable.Target{Dst: netip.PrefixFrom(addrN(i), 32), NextHops: []routetable.NextHop{{Iface: "bench0"}}, MTU: mtu}
	}
	return ts
}

func rawRoute(i, index, mtu int) *netlink.Route {
	a := addrN(i)
	return &netlink.Route{Dst: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(32, 32)}, LinkIndex: index,
		Scope: netlink.SCOPE_LINK, Protocol: 96, MTU: mtu, Table: 254}
}

func (s *bench) ipBatch(b *testing.B, verb string, n, mtu int) {
	var sb strings.Builder
	for i := range n {
		fmt.Fprintf(&sb, "route %s %s/32 dev bench0 scope link proto 96", verb, addrN(i))
		if verb != "del" {
			fmt.Fprintf(&sb, " mtu %d", mtu)
		}
		sb.WriteByte('\n')
	}
	f := filepath.Join(b.TempDir(), "batch")
	if err := os.WriteFile(f, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	out, err := exec.Command("ip", "-n", netnstest.Name(s.ns), "-batch", f).CombinedOutput()
	b.StopTimer()
	if err != nil {
		b.Fatalf("ip -batch %s: %v: %s", verb, err, out)
	}
}

// BenchmarkB1 is route add/replace/delete/dump at N routes.
func BenchmarkB1(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("gingham/n=%d", n), func(b *testing.B) {
			s := setup(b)
			rt := routetable.New(s.h)
			for range b.N {
				b.StopTimer()
				_ = rt.SetRoutes(targets(n, 1400))
				b.StartTimer()
				mustApply(b, rt, n, "add")
				_ = rt.SetRoutes(targets(n, 1300))
				mustApply(b, rt, n, "replace")
				_, err := s.h.RouteList(netlinkx.RouteFilter{Protocol: 96})
				if err != nil {
					b.Fatal(err)
				}
				_ = rt.SetRoutes(nil)
				mustApply(b, rt, n, "delete")
			}
			b.ReportMetric(float64(4*n*b.N)/b.Elapsed().Seconds(), "routes/s")
		})
		b.Run(fmt.Sprintf("handle/n=%d", n), func(b *testing.B) {
			s := setup(b)
			for range b.N {
				for i := range n {
					if err := s.raw.RouteAdd(rawRoute(i, s.index, 1400)); err != nil {
						b.Fatal(err)
					}
				}
				for i := range n {
					if err := s.raw.RouteReplace(rawRoute(i, s.index, 1300)); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := s.raw.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: 254, Protocol: 96}, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL); err != nil {
					b.Fatal(err)
				}
				for i := range n {
					if err := s.raw.RouteDel(rawRoute(i, s.index, 0)); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(4*n*b.N)/b.Elapsed().Seconds(), "routes/s")
		})
		b.Run(fmt.Sprintf("ip-batch/n=%d", n), func(b *testing.B) {
			s := setup(b)
			b.StopTimer()
			for range b.N {
				s.ipBatch(b, "add", n, 1400)
				s.ipBatch(b, "replace", n, 1300)
				b.StartTimer()
				if err := exec.Command("sh", "-c", "ip -n "+netnstest.Name(s.ns)+" route show proto 96 >/dev/null").Run(); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				s.ipBatch(b, "del", n, 0)
			}
			b.ReportMetric(float64(4*n*b.N)/b.Elapsed().Seconds(), "routes/s")
		})
	}
}

func mustApply(b *testing.B, rt *routetable.RouteTable, n int, what string) {
	res, err := rt.Apply()
	if err != nil {
		b.Fatal(err)
	}
	if what == "add" && res.Replaced != n || what == "delete" && res.Deleted != n {
		b.Fatalf("%s: %+v", what, res)
	}
}

// BenchmarkB2 is a resync of N routes with 0, 1 and 10 % drift (half
// deleted, half changed behind the table's back), against a dump alone.
func BenchmarkB2(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		for _, drift := range []int{0, 1, 10} {
			b.Run(fmt.Sprintf("gingham/n=%d/drift=%d%%", n, drift), func(b *testing.B) {
				s := setup(b)
				rt := routetable.New(s.h)
				_ = rt.SetRoutes(targets(n, 1400))
				if _, err := rt.Apply(); err != nil {
					b.Fatal(err)
				}
				k := n * drift / 100
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					b.StopTimer()
					for i := range k {
						if i%2 == 0 {
							_ = s.raw.RouteDel(rawRoute(i*97%n, s.index, 0))
						} else {
							_ = s.raw.RouteReplace(rawRoute(i*97%n, s.index, 1200))
						}
					}
					b.StartTimer()
					res, err := rt.Apply()
					if err != nil || res.Replaced != k {
						b.Fatalf("resync: %+v, %v (want %d replaced)", res, err, k)
					}
				}
			})
		}
		b.Run(fmt.Sprintf("dump-only/n=%d", n), func(b *testing.B) {
			s := setup(b)
			rt := routetable.New(s.h)
			_ = rt.SetRoutes(targets(n, 1400))
			if _, err := rt.Apply(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				c := 0
				if err := s.raw.RouteListFilteredIter(netlink.FAMILY_V4, &netlink.Route{Table: 254}, netlink.RT_FILTER_TABLE, func(netlink.Route) bool { c++; return true }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
