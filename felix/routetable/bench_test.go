package routetable_test

// Benchmarks B1 and B2 (docs/benchmarks.md): run as root with
//   go test -run '^$' -bench . -benchtime 3x ./felix/routetable/ [-args -b1.sizes 1000,10000,100000]
// make bench runs them through test/benchsuite. Each runs in a throwaway
// netns on a veth. The reference loop uses the raw vishvananda/netlink
// Handle (test-only import) and iproute2's ip -batch.

import (
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

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

// batchFile writes an ip -batch file that applies verb to N routes.
func (s *bench) batchFile(b *testing.B, verb string, n, mtu int) string {
	var sb strings.Builder
	for i := range n {
		fmt.Fprintf(&sb, "route %s %s/32 dev bench0 scope link proto 96", verb, addrN(i))
		if verb != "del" {
			fmt.Fprintf(&sb, " mtu %d", mtu)
		}
		sb.WriteByte('\n')
	}
	f := filepath.Join(b.TempDir(), verb)
	if err := os.WriteFile(f, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	return f
}

// ip runs iproute2's ip in the benchmark's namespace.
func (s *bench) ip(b *testing.B, args ...string) {
	out, err := exec.Command("ip", append([]string{"-n", netnstest.Name(s.ns)}, args...)...).CombinedOutput()
	if err != nil {
		b.Fatalf("ip %v: %v: %s", args, err, out)
	}
}

// Sizes are flags so that make bench (test/benchsuite) can choose them
// within its time budget; the defaults are the quick sizes.
var (
	b1Sizes = flag.String("b1.sizes", "1000,10000", "BenchmarkB1: route counts, comma-separated")
	b2Sizes = flag.String("b2.sizes", "1000,10000", "BenchmarkB2: route counts, comma-separated")
)

func sizes(b *testing.B, list string) []int {
	var ns []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 || n > 1<<20 {
			b.Fatalf("bad size %q in %q", f, list)
		}
		ns = append(ns, n)
	}
	return ns
}

// phases times the four phases of one B1 iteration.
type phases struct{ add, replace, dump, del time.Duration }

func timed(into *time.Duration, f func()) {
	t0 := time.Now()
	f()
	*into += time.Since(t0)
}

// report adds the phases' mean seconds per iteration (add-s is the time to
// program N new routes into the kernel), the add rate, and the rate over
// all four phases (4·N routes per iteration).
func (p *phases) report(b *testing.B, n int) {
	per := func(d time.Duration) float64 { return d.Seconds() / float64(b.N) }
	b.ReportMetric(per(p.add), "add-s")
	b.ReportMetric(per(p.replace), "replace-s")
	b.ReportMetric(per(p.dump), "dump-s")
	b.ReportMetric(per(p.del), "del-s")
	b.ReportMetric(float64(n*b.N)/p.add.Seconds(), "add-routes/s")
	b.ReportMetric(float64(4*n*b.N)/(p.add+p.replace+p.dump+p.del).Seconds(), "routes/s")
}

// BenchmarkB1 is route add, replace (new MTU), dump and delete of N routes:
// gingham's RouteTable (SetRoutes + Apply, desired state prepared before),
// the same loop on a reused netlink.Handle, and iproute2's ip -batch (batch
// file written before; the process start is part of its time).
func BenchmarkB1(b *testing.B) {
	for _, n := range sizes(b, *b1Sizes) {
		b.Run(fmt.Sprintf("gingham/n=%d", n), func(b *testing.B) {
			s := setup(b)
			rt := routetable.New(s.h)
			t1400, t1300 := targets(n, 1400), targets(n, 1300)
			var p phases
			b.ResetTimer()
			for range b.N {
				timed(&p.add, func() { _ = rt.SetRoutes(t1400); mustApply(b, rt, n, "add") })
				timed(&p.replace, func() { _ = rt.SetRoutes(t1300); mustApply(b, rt, n, "replace") })
				timed(&p.dump, func() {
					if _, err := s.h.RouteList(netlinkx.RouteFilter{Protocol: 96}); err != nil {
						b.Fatal(err)
					}
				})
				timed(&p.del, func() { _ = rt.SetRoutes(nil); mustApply(b, rt, n, "delete") })
			}
			b.StopTimer()
			p.report(b, n)
		})
		b.Run(fmt.Sprintf("handle/n=%d", n), func(b *testing.B) {
			s := setup(b)
			var p phases
			b.ResetTimer()
			for range b.N {
				timed(&p.add, func() {
					for i := range n {
						if err := s.raw.RouteAdd(rawRoute(i, s.index, 1400)); err != nil {
							b.Fatal(err)
						}
					}
				})
				timed(&p.replace, func() {
					for i := range n {
						if err := s.raw.RouteReplace(rawRoute(i, s.index, 1300)); err != nil {
							b.Fatal(err)
						}
					}
				})
				timed(&p.dump, func() {
					if _, err := s.raw.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: 254, Protocol: 96}, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL); err != nil {
						b.Fatal(err)
					}
				})
				timed(&p.del, func() {
					for i := range n {
						if err := s.raw.RouteDel(rawRoute(i, s.index, 0)); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
			b.StopTimer()
			p.report(b, n)
		})
		b.Run(fmt.Sprintf("ip-batch/n=%d", n), func(b *testing.B) {
			s := setup(b)
			add, replace, del := s.batchFile(b, "add", n, 1400), s.batchFile(b, "replace", n, 1300), s.batchFile(b, "del", n, 0)
			var p phases
			b.ResetTimer()
			for range b.N {
				timed(&p.add, func() { s.ip(b, "-batch", add) })
				timed(&p.replace, func() { s.ip(b, "-batch", replace) })
				timed(&p.dump, func() {
					if err := exec.Command("sh", "-c", "ip -n "+netnstest.Name(s.ns)+" route show proto 96 >/dev/null").Run(); err != nil {
						b.Fatal(err)
					}
				})
				timed(&p.del, func() { s.ip(b, "-batch", del) })
			}
			b.StopTimer()
			p.report(b, n)
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
	for _, n := range sizes(b, *b2Sizes) {
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
