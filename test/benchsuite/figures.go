package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/gingham-net/gingham/test/bench/result"
)

func microFile(bench string, s samples, o microOpts) *result.File {
	switch bench {
	case "B1":
		return b1File(s, append(ints(o.b1Small), ints(o.b1Sizes)...), ints(o.b1Small))
	case "B2":
		return b2File(s, ints(o.b2Sizes), o.b2Iters)
	case "B7":
		return b7File(s, o.b7Pods)
	default:
		return b8File(s, o.b8Iters)
	}
}

func ints(list string) []int {
	var out []int
	for _, f := range strings.Split(list, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// count is a route count for a figure name: 10000 → "10k".
func count(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return strconv.Itoa(n)
}

func counts(ns []int) []string {
	var out []string
	for _, n := range ns {
		out = append(out, count(n))
	}
	return out
}

func ptr(b bool) *bool { return &b }

// timeScale picks ms or s for a figure measured in seconds, by gingham's
// median.
func timeScale(seconds float64) (float64, string) {
	if seconds < 1 {
		return 1000, "ms"
	}
	return 1, "s"
}

func b1File(s samples, sizes, small []int) *result.File {
	f := &result.File{Bench: "B1", Title: "Route programming into the kernel",
		Method: "N /32 routes (`dev bench0 scope link proto 96`, on a veth end in a throwaway namespace) are added, " +
			"replaced with a new MTU, dumped and deleted. gingham is `felix/routetable`'s `SetRoutes` + `Apply` " +
			"(desired state prepared before the clock starts; Apply also dumps the table and the links); the references " +
			"run the same four phases in the same test binary run: a loop over one reused vishvananda `netlink.Handle` " +
			"(`RouteAdd`/`RouteReplace`/`RouteListFiltered`/`RouteDel`, one syscall per route) and iproute2 `ip -batch` " +
			"(batch files written before; the process start counts). A repetition's figure is the mean of 10 iterations at " +
			strings.Join(counts(small), ", ") + " routes and one iteration at the larger sizes; each repetition is a fresh run of the test binary, in turn with the other micro benchmarks."}
	series := []struct{ name, sub string }{{"gingham", "gingham"}, {"netlink.Handle", "handle"}, {"ip -batch", "ip-batch"}}
	curves := make([]result.Curve, len(series))
	for i, se := range series {
		curves[i] = result.Curve{Chart: "b1-routes-to-kernel", Title: "B1: routes → time to add them to the kernel",
			XLabel: "routes", YLabel: "seconds", Series: se.name}
	}
	for _, n := range sizes {
		name := func(sub string) string { return fmt.Sprintf("B1/%s/n=%d", sub, n) }
		refs := func(unit string, scale float64) []result.Value {
			return []result.Value{{Name: "netlink.Handle", Stat: s.stat(name("handle"), unit, scale)},
				{Name: "ip -batch", Stat: s.stat(name("ip-batch"), unit, scale)}}
		}
		rate := s.stat(name("gingham"), "add-routes/s", 1)
		handle := s.stat(name("handle"), "add-routes/s", 1)
		f.Figures = append(f.Figures, result.Figure{Bench: "B1", Name: fmt.Sprintf("add %s routes, rate", count(n)), Unit: "routes/s",
			Gingham: rate, Refs: refs("add-routes/s", 1), Goal: "≥ 100k routes/s and ≥ 0.8× Handle",
			Met: ptr(rate.Median >= 100e3 && result.Ratio(rate, handle) >= 0.8)})
		for _, ph := range []struct{ what, unit string }{
			{"add %s routes (time into the kernel)", "add-s"}, {"replace %s routes (new MTU)", "replace-s"},
			{"dump %s routes", "dump-s"}, {"delete %s routes", "del-s"},
		} {
			sc, u := timeScale(s.stat(name("gingham"), ph.unit, 1).Median)
			f.Figures = append(f.Figures, result.Figure{Bench: "B1", Name: fmt.Sprintf(ph.what, count(n)), Unit: u, Lower: true,
				Gingham: s.stat(name("gingham"), ph.unit, sc), Refs: refs(ph.unit, sc)})
		}
		for i, se := range series {
			curves[i].Points = append(curves[i].Points, result.Point{X: float64(n), Y: s.stat(name(se.sub), "add-s", 1)})
		}
	}
	f.Curves = curves
	return f
}

func b2File(s samples, sizes []int, iters int) *result.File {
	f := &result.File{Bench: "B2", Title: "No-op and drift resync",
		Method: fmt.Sprintf("A `RouteTable` that has programmed N routes resyncs (`Apply`) after 0, 1 or 10 %% of them "+
			"were changed behind its back (half deleted, half given a new MTU, untimed); the reference is the lower bound of "+
			"any resync: one vishvananda `RouteListFilteredIter` dump of the table, counting routes. Each figure of a "+
			"repetition is the mean of %d resyncs (`-benchtime %dx`, `-benchmem` figures per resync).", iters, iters)}
	goalTime := map[int]string{10000: "≤ 30 ms", 65536: "≤ 250 ms"}
	goalMem := map[int]string{10000: "≤ 5 MB/op"}
	chart := func(series string) result.Curve {
		return result.Curve{Chart: "b2-resync", Title: "B2: routes → resync time", XLabel: "routes", YLabel: "milliseconds", Series: series}
	}
	noop, drift, dump := chart("gingham, no drift"), chart("gingham, 10 % drift"), chart("dump only")
	for _, n := range sizes {
		g := func(d int) string { return fmt.Sprintf("B2/gingham/n=%d/drift=%d%%", n, d) }
		ref := fmt.Sprintf("B2/dump-only/n=%d", n)
		dumpRef := func(unit string, scale float64) []result.Value {
			return []result.Value{{Name: "dump only", Stat: s.stat(ref, unit, scale)}}
		}
		t := s.stat(g(0), "ns/op", 1e-6)
		fig := result.Figure{Bench: "B2", Name: fmt.Sprintf("no-op resync of %s routes", count(n)), Unit: "ms", Lower: true,
			Gingham: t, Refs: dumpRef("ns/op", 1e-6)}
		if goal, ok := goalTime[n]; ok {
			lim, _ := strconv.ParseFloat(strings.Fields(goal)[1], 64)
			fig.Goal, fig.Met = goal, ptr(t.Median <= lim)
		}
		f.Figures = append(f.Figures, fig)
		m := s.stat(g(0), "B/op", 1e-6)
		fig = result.Figure{Bench: "B2", Name: fmt.Sprintf("no-op resync of %s routes, memory", count(n)), Unit: "MB/op", Lower: true,
			Gingham: m, Refs: dumpRef("B/op", 1e-6)}
		if goal, ok := goalMem[n]; ok {
			lim, _ := strconv.ParseFloat(strings.Fields(goal)[1], 64)
			fig.Goal, fig.Met = goal, ptr(m.Median <= lim)
		}
		f.Figures = append(f.Figures, fig,
			result.Figure{Bench: "B2", Name: fmt.Sprintf("no-op resync of %s routes, allocations", count(n)), Unit: "allocs/op", Lower: true,
				Gingham: s.stat(g(0), "allocs/op", 1), Refs: dumpRef("allocs/op", 1)})
		for _, d := range []int{1, 10} {
			f.Figures = append(f.Figures, result.Figure{Bench: "B2", Name: fmt.Sprintf("resync of %s routes, %d %% drift", count(n), d),
				Unit: "ms", Lower: true, Gingham: s.stat(g(d), "ns/op", 1e-6), Refs: dumpRef("ns/op", 1e-6)})
		}
		noop.Points = append(noop.Points, result.Point{X: float64(n), Y: t})
		drift.Points = append(drift.Points, result.Point{X: float64(n), Y: s.stat(g(10), "ns/op", 1e-6)})
		dump.Points = append(dump.Points, result.Point{X: float64(n), Y: s.stat(ref, "ns/op", 1e-6)})
	}
	f.Curves = []result.Curve{noop, drift, dump}
	return f
}

func b7File(s samples, pods int) *result.File {
	f := &result.File{Bench: "B7", Title: "CNI ADD / DEL latency",
		Method: fmt.Sprintf("%d pods are attached (ADD) and then detached (DEL), one at a time and then 20 at a time, "+
			"each in its own fresh network namespace, by executing the plugin as a container runtime does "+
			"(environment, config on stdin) from a throwaway host namespace. gingham is `bin/gingham` from make build; "+
			"the reference is Debian's `ptp` in the same run; both delegate to Debian's `host-local` IPAM. "+
			"A repetition's figure is a percentile over its %d pods; the table gives the median and range of that "+
			"percentile over the repetitions.", pods, pods)}
	for _, par := range []int{1, 20} {
		label := "sequential"
		if par > 1 {
			label = fmt.Sprintf("%d in parallel", par)
		}
		for _, m := range []struct{ what, unit string }{{"ADD p50", "add-p50-ms"}, {"ADD p99", "add-p99-ms"}, {"DEL p50", "del-p50-ms"}, {"DEL p99", "del-p99-ms"}} {
			g := s.stat(fmt.Sprintf("B7/gingham/parallel=%d", par), m.unit, 1)
			ref := s.stat(fmt.Sprintf("B7/ptp/parallel=%d", par), m.unit, 1)
			fig := result.Figure{Bench: "B7", Name: fmt.Sprintf("%s, %s", m.what, label), Unit: "ms", Lower: true,
				Gingham: g, Refs: []result.Value{{Name: "ptp + host-local", Stat: ref}}}
			switch {
			case m.unit == "add-p99-ms" && par == 1:
				fig.Goal, fig.Met = "≤ 100 ms and ≤ 1.5× ptp", ptr(g.Median <= 100 && result.Ratio(g, ref) <= 1.5)
			case m.unit == "add-p99-ms":
				fig.Goal, fig.Met = "≤ 1.5× ptp", ptr(result.Ratio(g, ref) <= 1.5)
			}
			f.Figures = append(f.Figures, fig)
		}
	}
	return f
}

func b8File(s samples, iters int) *result.File {
	f := &result.File{Bench: "B8", Title: "IPAM allocation",
		Method: fmt.Sprintf("gingham's allocator (`ipam`) against a real kube-apiserver + etcd (envtest, `bin/`) "+
			"on the same two cores. One pod at a time: %d allocate + release-by-handle pairs per repetition, "+
			"p50/p99 over them. The reference, in the same test binary run, is the least an address can cost "+
			"through the API: one GET and one compare-and-swap UPDATE of a block (`BenchmarkReferenceBlockCAS`). "+
			"The burst: 110 pods (the kubelet's default maximum) allocate at once on one node; its reference is "+
			"110 × the reference's p50 of the same repetition.", iters)}
	const ar, cas, burst = "AssignRelease", "ReferenceBlockCAS", "Burst110OneNode"
	casRef := func(unit string) []result.Value {
		return []result.Value{{Name: "block GET + CAS", Stat: s.stat(cas, unit, 1)}}
	}
	note := "§7's goal is for an in-process datastore; this allocator always goes through the API server, whose floor is the reference"
	p99 := s.stat(ar, "assign-p99-ms", 1)
	f.Figures = append(f.Figures,
		result.Figure{Bench: "B8", Name: "allocate, one pod at a time, p50", Unit: "ms", Lower: true,
			Gingham: s.stat(ar, "assign-p50-ms", 1), Refs: casRef("cas-p50-ms")},
		result.Figure{Bench: "B8", Name: "allocate, one pod at a time, p99", Unit: "ms", Lower: true,
			Gingham: p99, Refs: casRef("cas-p99-ms"), Goal: "≤ 1 ms in-process", Met: ptr(p99.Median <= 1), Note: note},
		result.Figure{Bench: "B8", Name: "release by handle, p50", Unit: "ms", Lower: true,
			Gingham: s.stat(ar, "release-p50-ms", 1), Refs: casRef("cas-p50-ms")},
		result.Figure{Bench: "B8", Name: "release by handle, p99", Unit: "ms", Lower: true,
			Gingham: s.stat(ar, "release-p99-ms", 1), Refs: casRef("cas-p99-ms")},
	)
	whole := s.stat(burst, "ns/op", 1e-9)
	f.Figures = append(f.Figures,
		result.Figure{Bench: "B8", Name: "110-pod burst on one node, all addresses", Unit: "s", Lower: true, Gingham: whole,
			Refs: []result.Value{{Name: "110 × block GET + CAS p50",
				Stat: s.stat(cas, "cas-p50-ms", 110.0/1000)}},
			Goal: "≤ 5 s", Met: ptr(whole.Median <= 5)},
		result.Figure{Bench: "B8", Name: "110-pod burst, per-pod latency p50 (queueing included)", Unit: "s", Lower: true,
			Gingham: s.stat(burst, "pod-p50-ms", 1e-3)},
		result.Figure{Bench: "B8", Name: "110-pod burst, per-pod latency p99 (queueing included)", Unit: "s", Lower: true,
			Gingham: s.stat(burst, "pod-p99-ms", 1e-3)},
	)
	f.Notes = append(f.Notes, "BenchmarkFourNodes250 (4 nodes × 250 concurrent allocations, ~45 s a run) is not part of make bench (time budget); run it by hand: `go test -run '^$' -bench FourNodes250 -benchtime 1x ./ipam/`.")
	return f
}
