package routetable

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gingham-net/gingham/internal/netlinkx"
)

// fakeKernel is one main table plus links; it fails loudly on misuse.
type fakeKernel struct {
	links     []netlinkx.Link
	routes    []netlinkx.Route
	dumpErr   error
	replaces  int
	deletes   int
	failOnDst netip.Prefix
	// unreachableGw makes a replace with this gateway and no interface fail
	// as the kernel does for a gateway off every connected subnet.
	unreachableGw netip.Addr
}

var _ Kernel = (*fakeKernel)(nil)

func (k *fakeKernel) LinkList() ([]netlinkx.Link, error) { return slices.Clone(k.links), nil }

func (k *fakeKernel) RouteEach(f netlinkx.RouteFilter, fn func(*netlinkx.Route), reset func()) error {
	reset()
	if k.dumpErr != nil {
		return k.dumpErr
	}
	for i := range k.routes {
		if k.routes[i].Table == f.Table {
			fn(&k.routes[i])
		}
	}
	return nil
}

func (k *fakeKernel) key(r *netlinkx.Route) int {
	return slices.IndexFunc(k.routes, func(x netlinkx.Route) bool {
		return x.Dst == r.Dst && x.Table == r.Table && x.Priority == r.Priority
	})
}

func (k *fakeKernel) RouteReplace(r *netlinkx.Route) error {
	if r.Dst == k.failOnDst {
		return fmt.Errorf("replace route %s: injected failure", r.Dst)
	}
	if k.unreachableGw.IsValid() && r.Path.Gw == k.unreachableGw && r.Path.LinkIndex == 0 {
		return fmt.Errorf("replace route %s: %w", r.Dst, unix.ENETUNREACH)
	}
	if r.Table == 0 || r.Protocol == 0 {
		return fmt.Errorf("replace route %s: table and protocol must be set", r.Dst)
	}
	for _, nh := range append([]netlinkx.NextHop{r.Path}, r.MultiPath...) {
		if nh.LinkIndex != 0 && !slices.ContainsFunc(k.links, func(l netlinkx.Link) bool { return l.Index == nh.LinkIndex }) {
			return fmt.Errorf("replace route %s: no link %d", r.Dst, nh.LinkIndex)
		}
	}
	k.replaces++
	if i := k.key(r); i >= 0 {
		k.routes[i] = *r
		return nil
	}
	k.routes = append(k.routes, *r)
	return nil
}

func (k *fakeKernel) RouteDel(r *netlinkx.Route) error {
	i := k.key(r)
	if i < 0 {
		return fmt.Errorf("delete route %s: %w", r.Dst, netlinkx.ErrNotFound)
	}
	if k.routes[i].Protocol != r.Protocol {
		return fmt.Errorf("delete route %s: protocol %d does not match %d", r.Dst, r.Protocol, k.routes[i].Protocol)
	}
	k.deletes++
	k.routes = slices.Delete(k.routes, i, i+1)
	return nil
}

var (
	pfx  = netip.MustParsePrefix
	addr = netip.MustParseAddr
)

func links() []netlinkx.Link {
	return []netlinkx.Link{
		{Index: 1, Name: "lo", Up: true},
		{Index: 2, Name: "eth0", Up: true},
		{Index: 3, Name: "cali0123456789a", Up: true},
		{Index: 4, Name: "tunl0", Up: true},
		{Index: 5, Name: "calidown", Up: false},
	}
}

func kr(dst string, proto int, path netlinkx.NextHop) netlinkx.Route {
	r := netlinkx.Route{Dst: pfx(dst), Table: netlinkx.TableMain, Protocol: proto, Type: netlinkx.RouteUnicast, Path: path}
	if !path.Gw.IsValid() {
		r.Scope = netlinkx.ScopeLink
	}
	return r
}

func TestApply(t *testing.T) {
	workload := Target{Dst: pfx("10.0.0.5/32"), NextHops: []NextHop{{Iface: "cali0123456789a"}}}
	block := Target{Dst: pfx("10.0.0.0/26"), Blackhole: true}
	ipip := Target{Dst: pfx("10.0.1.0/26"), NextHops: []NextHop{{Iface: "tunl0", Gw: addr("192.168.0.2"), OnLink: true}}}
	ecmp := Target{Dst: pfx("10.0.2.0/26"), NextHops: []NextHop{{Iface: "eth0", Gw: addr("192.168.0.3")}, {Iface: "eth0", Gw: addr("192.168.0.2")}}}
	tests := []struct {
		name    string
		kernel  []netlinkx.Route
		desired []Target
		want    Result
		// after checks the kernel routes by prefix: protocol wanted, or 0 for absent.
		after map[string]int
	}{
		{
			name:    "empty kernel gets every kind of route",
			desired: []Target{workload, block, ipip, ecmp},
			want:    Result{Replaced: 4},
			after:   map[string]int{"10.0.0.5/32": 96, "10.0.0.0/26": 96, "10.0.1.0/26": 96, "10.0.2.0/26": 96},
		},
		{
			name: "routes of other protocols are never touched, even on a desired prefix",
			kernel: []netlinkx.Route{
				kr("10.0.0.5/32", netlinkx.ProtoStatic, netlinkx.NextHop{LinkIndex: 2}),
				kr("192.168.0.0/24", netlinkx.ProtoKernel, netlinkx.NextHop{LinkIndex: 2}),
				kr("10.9.0.0/24", netlinkx.ProtoBird, netlinkx.NextHop{LinkIndex: 2, Gw: addr("192.168.0.9")}),
			},
			desired: []Target{workload},
			want:    Result{Conflicts: 1},
			after:   map[string]int{"10.0.0.5/32": netlinkx.ProtoStatic, "192.168.0.0/24": netlinkx.ProtoKernel, "10.9.0.0/24": netlinkx.ProtoBird},
		},
		{
			name: "ours and unchanged is adopted, ours and undesired is deleted, ours and wrong is replaced",
			kernel: []netlinkx.Route{
				kr("10.0.0.5/32", 96, netlinkx.NextHop{LinkIndex: 3}),
				kr("10.7.0.0/26", 96, netlinkx.NextHop{LinkIndex: 2, Gw: addr("192.168.0.7")}),
				kr("10.0.1.0/26", 96, netlinkx.NextHop{LinkIndex: 2, Gw: addr("192.168.0.2")}),
			},
			desired: []Target{workload, ipip},
			want:    Result{Unchanged: 1, Deleted: 1, Replaced: 1},
			after:   map[string]int{"10.0.0.5/32": 96, "10.7.0.0/26": 0, "10.0.1.0/26": 96},
		},
		{
			name:    "ours on a new workload interface is kept for the grace period",
			kernel:  []netlinkx.Route{kr("10.0.0.9/32", 96, netlinkx.NextHop{LinkIndex: 3})},
			desired: nil,
			want:    Result{Kept: 1},
			after:   map[string]int{"10.0.0.9/32": 96},
		},
		{
			name:    "missing or down interfaces leave the route pending",
			desired: []Target{{Dst: pfx("10.0.0.6/32"), NextHops: []NextHop{{Iface: "calinothere"}}}, {Dst: pfx("10.0.0.7/32"), NextHops: []NextHop{{Iface: "calidown"}}}},
			want:    Result{Pending: 2},
			after:   map[string]int{"10.0.0.6/32": 0, "10.0.0.7/32": 0},
		},
		{
			name: "ECMP next hops compare as a set",
			kernel: []netlinkx.Route{{Dst: pfx("10.0.2.0/26"), Table: 254, Protocol: 96, Type: netlinkx.RouteUnicast, MultiPath: []netlinkx.NextHop{
				{LinkIndex: 2, Gw: addr("192.168.0.3")}, {LinkIndex: 2, Gw: addr("192.168.0.2")}}}},
			desired: []Target{ecmp},
			want:    Result{Unchanged: 1},
			after:   map[string]int{"10.0.2.0/26": 96},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := &fakeKernel{links: links(), routes: slices.Clone(tc.kernel)}
			rt := New(k)
			if err := rt.SetRoutes(tc.desired); err != nil {
				t.Fatal(err)
			}
			got, err := rt.Apply()
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("first Apply = %+v, want %+v", got, tc.want)
			}
			for dst, proto := range tc.after {
				i := slices.IndexFunc(k.routes, func(r netlinkx.Route) bool { return r.Dst == pfx(dst) })
				switch {
				case proto == 0 && i >= 0:
					t.Errorf("%s: still present: %+v", dst, k.routes[i])
				case proto != 0 && i < 0:
					t.Errorf("%s: missing", dst)
				case proto != 0 && k.routes[i].Protocol != proto:
					t.Errorf("%s: protocol %d, want %d", dst, k.routes[i].Protocol, proto)
				}
			}
			// Reconciling again is a no-op.
			w, d := k.replaces, k.deletes
			again, err := rt.Apply()
			if err != nil {
				t.Fatal(err)
			}
			if k.replaces != w || k.deletes != d || again.Replaced+again.Deleted != 0 {
				t.Errorf("second Apply changed the kernel: %+v", again)
			}
		})
	}
}

func TestGracePeriodExpires(t *testing.T) {
	now := time.Unix(1000, 0)
	k := &fakeKernel{links: links(), routes: []netlinkx.Route{kr("10.0.0.9/32", 96, netlinkx.NextHop{LinkIndex: 3})}}
	rt := New(k, WithClock(func() time.Time { return now }), WithGracePeriod(10*time.Second))
	steps := []struct {
		advance time.Duration
		want    Result
	}{
		{0, Result{Kept: 1}},
		{9 * time.Second, Result{Kept: 1}},
		{2 * time.Second, Result{Deleted: 1}},
		{time.Second, Result{}},
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		got, err := rt.Apply()
		if err != nil || got != s.want {
			t.Fatalf("step %d: Apply = %+v, %v; want %+v", i, got, err, s.want)
		}
	}
}

// TestRetain: while a predicate retains routes, undesired routes of ours it
// matches stay as they are and desired ones are still programmed (a
// retained route is replaced, not deleted); once it is lifted they go.
func TestRetain(t *testing.T) {
	learned := func(r *netlinkx.Route) bool { return r.Path.Gw.IsValid() || len(r.MultiPath) > 0 }
	k := &fakeKernel{links: links(), routes: []netlinkx.Route{
		kr("10.7.0.0/26", 96, netlinkx.NextHop{LinkIndex: 2, Gw: addr("192.168.0.7")}),
		kr("10.0.1.0/26", 96, netlinkx.NextHop{LinkIndex: 2, Gw: addr("192.168.0.9")}),
		{Dst: pfx("10.0.9.0/26"), Table: netlinkx.TableMain, Protocol: 96, Type: netlinkx.RouteBlackhole},
	}}
	rt := New(k)
	rt.Retain(learned)
	_ = rt.SetRoutes([]Target{{Dst: pfx("10.0.0.0/26"), Blackhole: true}, {Dst: pfx("10.0.1.0/26"), NextHops: []NextHop{{Gw: addr("192.168.0.2")}}}})
	steps := []struct {
		name   string
		retain func(*netlinkx.Route) bool
		want   Result
		kernel []string
	}{
		{name: "retained: the undesired learned route stays, the blackhole of a released block goes", retain: learned,
			want: Result{Replaced: 2, Deleted: 1, Kept: 1}, kernel: []string{"10.7.0.0/26", "10.0.1.0/26", "10.0.0.0/26"}},
		{name: "lifted: it goes", want: Result{Unchanged: 2, Deleted: 1}, kernel: []string{"10.0.1.0/26", "10.0.0.0/26"}},
	}
	for _, s := range steps {
		rt.Retain(s.retain)
		got, err := rt.Apply()
		if err != nil || got != s.want {
			t.Errorf("%s: Apply = %+v, %v; want %+v", s.name, got, err, s.want)
		}
		var kernel []string
		for _, r := range k.routes {
			kernel = append(kernel, r.Dst.String())
		}
		if !slices.Equal(kernel, s.kernel) {
			t.Errorf("%s: kernel %v, want %v", s.name, kernel, s.kernel)
		}
	}
}

func TestApplyFailedDumpChangesNothing(t *testing.T) {
	k := &fakeKernel{links: links(), dumpErr: fmt.Errorf("dump routes: %w", netlinkx.ErrInconsistentDump),
		routes: []netlinkx.Route{kr("10.7.0.0/26", 96, netlinkx.NextHop{LinkIndex: 2, Gw: addr("192.168.0.7")})}}
	rt := New(k)
	_ = rt.SetRoutes([]Target{{Dst: pfx("10.0.0.0/26"), Blackhole: true}})
	if _, err := rt.Apply(); !errors.Is(err, netlinkx.ErrInconsistentDump) {
		t.Fatalf("Apply = %v, want ErrInconsistentDump", err)
	}
	if k.replaces+k.deletes != 0 {
		t.Fatalf("kernel changed after a failed dump: %d replaces, %d deletes", k.replaces, k.deletes)
	}
}

func TestApplyReportsPartialFailure(t *testing.T) {
	k := &fakeKernel{links: links(), failOnDst: pfx("10.0.0.0/26")}
	rt := New(k)
	_ = rt.SetRoutes([]Target{{Dst: pfx("10.0.0.0/26"), Blackhole: true}, {Dst: pfx("10.0.1.0/26"), Blackhole: true}})
	res, err := rt.Apply()
	if err == nil || res.Replaced != 1 {
		t.Fatalf("Apply = %+v, %v; want 1 replaced and an error", res, err)
	}
	k.failOnDst = netip.Prefix{}
	if res, err = rt.Apply(); err != nil || res.Replaced != 1 || res.Unchanged != 1 {
		t.Fatalf("retry Apply = %+v, %v", res, err)
	}
}

// TestApplyUnreachableNextHopRemovesOldRoute: when the kernel refuses the
// new route because its gateway is unreachable (an IPIP pool switched to
// Never towards a node on another subnet), our old route to the prefix
// (through tunl0) is deleted rather than left in use; the error remains.
func TestApplyUnreachableNextHopRemovesOldRoute(t *testing.T) {
	gw := addr("192.168.2.21")
	k := &fakeKernel{links: links(), unreachableGw: gw,
		routes: []netlinkx.Route{kr("10.0.1.0/26", DefaultProtocol, netlinkx.NextHop{LinkIndex: 4, Gw: gw, OnLink: true})}}
	rt := New(k)
	_ = rt.SetRoutes([]Target{{Dst: pfx("10.0.1.0/26"), NextHops: []NextHop{{Gw: gw}}}})
	res, err := rt.Apply()
	if !errors.Is(err, unix.ENETUNREACH) || res.Deleted != 1 || len(k.routes) != 0 {
		t.Fatalf("Apply = %+v, %v, kernel %+v; want ENETUNREACH and the tunl0 route deleted", res, err, k.routes)
	}
	if res, err = rt.Apply(); !errors.Is(err, unix.ENETUNREACH) || res.Deleted != 0 || k.deletes != 1 {
		t.Fatalf("second Apply = %+v, %v, %d deletes; want the error again and nothing more deleted", res, err, k.deletes)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		t    Target
		ok   bool
	}{
		{"blackhole", Target{Dst: pfx("10.0.0.0/26"), Blackhole: true}, true},
		{"unmasked", Target{Dst: netip.PrefixFrom(addr("10.0.0.1"), 26), Blackhole: true}, false},
		{"blackhole with hop", Target{Dst: pfx("10.0.0.0/26"), Blackhole: true, NextHops: []NextHop{{Iface: "eth0"}}}, false},
		{"no hops", Target{Dst: pfx("10.0.0.0/26")}, false},
		{"onlink without gw", Target{Dst: pfx("10.0.0.0/26"), NextHops: []NextHop{{Iface: "tunl0", OnLink: true}}}, false},
		{"ecmp without gw", Target{Dst: pfx("10.0.0.0/26"), NextHops: []NextHop{{Iface: "a"}, {Iface: "b"}}}, false},
		{"via gw only", Target{Dst: pfx("10.0.0.0/26"), NextHops: []NextHop{{Gw: addr("1.2.3.4")}}}, true},
	}
	for _, tc := range tests {
		if err := tc.t.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}
