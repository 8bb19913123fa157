package ipip

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gingham-net/gingham/api/model"
	"github.com/gingham-net/gingham/felix/routetable"
)

var (
	pfx  = netip.MustParsePrefix
	addr = netip.MustParseAddr
)

func TestEncapsulate(t *testing.T) {
	local := pfx("192.168.1.11/24")
	for _, tc := range []struct {
		name  string
		mode  model.Encap
		local netip.Prefix
		nh    string
		want  bool
	}{
		{name: "always, same subnet", mode: model.EncapAlways, local: local, nh: "192.168.1.12", want: true},
		{name: "always, other subnet", mode: model.EncapAlways, local: local, nh: "192.168.2.21", want: true},
		{name: "cross-subnet, same subnet", mode: model.EncapCrossSubnet, local: local, nh: "192.168.1.12", want: false},
		{name: "cross-subnet, other subnet", mode: model.EncapCrossSubnet, local: local, nh: "192.168.2.21", want: true},
		{name: "cross-subnet, unknown subnet", mode: model.EncapCrossSubnet, nh: "192.168.1.12", want: true},
		{name: "never", mode: model.EncapNever, local: local, nh: "192.168.2.21", want: false},
		{name: "empty mode is never", mode: "", local: local, nh: "192.168.2.21", want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Encapsulate(tc.mode, tc.local, addr(tc.nh)); got != tc.want {
				t.Errorf("Encapsulate = %v, want %v", got, tc.want)
			}
			nh := RouteNextHop(tc.mode, tc.local, addr(tc.nh))
			want := routetable.NextHop{Gw: addr(tc.nh)}
			if tc.want {
				want = routetable.NextHop{Gw: addr(tc.nh), Iface: "tunl0", OnLink: true}
			}
			if diff := cmp.Diff(want, nh, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("RouteNextHop (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDesire(t *testing.T) {
	never := model.Pool{Name: "n", CIDR: pfx("10.1.0.0/16"), IPIPMode: model.EncapNever}
	always := model.Pool{Name: "a", CIDR: pfx("10.2.0.0/16"), IPIPMode: model.EncapAlways}
	cross := model.Pool{Name: "c", CIDR: pfx("10.3.0.0/16"), IPIPMode: model.EncapCrossSubnet, Disabled: true}
	v6 := model.Pool{Name: "6", CIDR: pfx("fd00::/48"), IPIPMode: model.EncapNever}
	ta := addr("10.2.0.1")
	for _, tc := range []struct {
		name  string
		pools []model.Pool
		addr  netip.Addr
		mtu   int
		want  Desired
	}{
		{name: "no pools", want: Desired{}},
		{name: "only never pools", pools: []model.Pool{never, v6}, addr: ta, mtu: 1500, want: Desired{}},
		{name: "always pool", pools: []model.Pool{never, always}, addr: ta, mtu: 1500, want: Desired{Enabled: true, Addr: ta, MTU: 1480}},
		{name: "disabled cross-subnet pool still counts", pools: []model.Pool{cross}, addr: ta, mtu: 1460, want: Desired{Enabled: true, Addr: ta, MTU: 1440}},
		{name: "no tunnel address yet", pools: []model.Pool{always}, mtu: 1500, want: Desired{Enabled: true, MTU: 1480}},
		{name: "unknown host MTU leaves MTU alone", pools: []model.Pool{always}, addr: ta, want: Desired{Enabled: true, Addr: ta}},
		{name: "v6 tunnel address ignored", pools: []model.Pool{always}, addr: addr("fd00::1"), mtu: 1500, want: Desired{Enabled: true, MTU: 1480}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Desire(tc.pools, tc.addr, tc.mtu); got != tc.want {
				t.Errorf("Desire = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestPeerAddrs(t *testing.T) {
	nodes := []model.Node{
		{Name: "b", IPv4: pfx("192.168.2.21/24")},
		{Name: "a", IPv4: pfx("192.168.1.11/24")},
		{Name: "new"}, // not started: no address
		{Name: "a-again", IPv4: pfx("192.168.1.11/24")},
	}
	want := []netip.Addr{addr("192.168.1.11"), addr("192.168.2.21")}
	if got := PeerAddrs(nodes); !slices.Equal(got, want) {
		t.Errorf("PeerAddrs = %v, want %v", got, want)
	}
	if got := normalise([]netip.Addr{addr("::ffff:10.0.0.1"), addr("fd00::1"), addr("10.0.0.1")}); !slices.Equal(got, []netip.Addr{addr("10.0.0.1")}) {
		t.Errorf("normalise = %v", got)
	}
}

func TestPlan(t *testing.T) {
	on := Desired{Enabled: true, Addr: addr("10.2.0.1"), MTU: 1480}
	ipipUp := Observed{Exists: true, Kind: "ipip", Index: 7, MTU: 1480, Up: true, Addrs: []netip.Prefix{pfx("10.2.0.1/32")}}
	with := func(o Observed, f func(*Observed)) Observed { f(&o); return o }
	for _, tc := range []struct {
		name    string
		d       Desired
		o       Observed
		want    []string
		wantErr error
	}{
		{name: "missing: create, mtu, address, up", d: on, o: Observed{}, want: []string{"create", "set-mtu 1480", "add-addr 10.2.0.1/32", "set-up"}},
		{name: "in sync: nothing", d: on, o: ipipUp},
		{name: "kernel fallback tunl0 (down, 1480, no address)", d: on, o: Observed{Exists: true, Kind: "ipip", Index: 3, MTU: 1480}, want: []string{"add-addr 10.2.0.1/32", "set-up"}},
		{name: "wrong MTU", d: on, o: with(ipipUp, func(o *Observed) { o.MTU = 1500 }), want: []string{"set-mtu 1480"}},
		{name: "stray addresses removed, ours kept", d: on, o: with(ipipUp, func(o *Observed) {
			o.Addrs = []netip.Prefix{pfx("10.9.9.9/32"), pfx("10.2.0.1/32"), pfx("10.2.0.1/24")}
		}), want: []string{"del-addr 10.9.9.9/32", "del-addr 10.2.0.1/24"}},
		{name: "address changed", d: Desired{Enabled: true, Addr: addr("10.2.0.5"), MTU: 1480}, o: ipipUp, want: []string{"del-addr 10.2.0.1/32", "add-addr 10.2.0.5/32"}},
		{name: "no address yet: none kept", d: Desired{Enabled: true, MTU: 1480}, o: ipipUp, want: []string{"del-addr 10.2.0.1/32"}},
		{name: "disabled: addresses stripped, device kept", d: Desired{}, o: ipipUp, want: []string{"del-addr 10.2.0.1/32"}},
		{name: "disabled and missing: nothing created", d: Desired{}, o: Observed{}},
		{name: "tunl0 of another kind: conflict, no writes", d: on, o: Observed{Exists: true, Kind: "dummy", Index: 4}, wantErr: ErrConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := Plan(tc.d, tc.o)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Plan error = %v, want %v", err, tc.wantErr)
			}
			var got []string
			for _, a := range plan {
				got = append(got, a.String())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

// fakeKernel behaves like the kernel's tunl0 and fails loudly on misuse
// (writes to a missing or foreign device, duplicate addresses).
type fakeKernel struct {
	supported bool
	link      Observed
	writes    int
	failOn    ActionKind // inject a failure on this write
}

var _ kernel = (*fakeKernel)(nil)

func (k *fakeKernel) observe() (Observed, error) {
	o := k.link
	o.Addrs = slices.Clone(o.Addrs)
	return o, nil
}

func (k *fakeKernel) write(kind ActionKind, index int) error {
	if k.failOn == kind {
		return fmt.Errorf("injected failure on %s", kind)
	}
	if kind != ActCreate && (!k.link.Exists || index != k.link.Index || k.link.Kind != "ipip") {
		return fmt.Errorf("%s on link %d: no such ipip link", kind, index)
	}
	k.writes++
	return nil
}

func (k *fakeKernel) create() error {
	if !k.supported {
		return fmt.Errorf("create tunl0: %w", ErrUnsupported)
	}
	if k.link.Exists {
		return errors.New("create tunl0: file exists")
	}
	if err := k.write(ActCreate, 0); err != nil {
		return err
	}
	k.link = Observed{Exists: true, Kind: "ipip", Index: 9, MTU: 1480}
	return nil
}

func (k *fakeKernel) setMTU(i, mtu int) error {
	if err := k.write(ActSetMTU, i); err != nil {
		return err
	}
	k.link.MTU = mtu
	return nil
}

func (k *fakeKernel) addAddr(i int, p netip.Prefix) error {
	if err := k.write(ActAddAddr, i); err != nil {
		return err
	}
	if slices.Contains(k.link.Addrs, p) {
		return fmt.Errorf("add %s: file exists", p)
	}
	k.link.Addrs = append(k.link.Addrs, p)
	return nil
}

func (k *fakeKernel) delAddr(i int, p netip.Prefix) error {
	if err := k.write(ActDelAddr, i); err != nil {
		return err
	}
	k.link.Addrs = slices.DeleteFunc(k.link.Addrs, func(a netip.Prefix) bool { return a == p })
	return nil
}

func (k *fakeKernel) setUp(i int) error {
	if err := k.write(ActSetUp, i); err != nil {
		return err
	}
	k.link.Up = true
	return nil
}

func TestManagerScenario(t *testing.T) {
	k := &fakeKernel{supported: true}
	m := newManager(k)
	on := Desired{Enabled: true, Addr: addr("10.2.0.1"), MTU: 1440}
	steps := []struct {
		name      string
		d         Desired
		wantReady bool
		wantN     int // writes performed by this step
	}{
		{name: "first apply creates everything", d: on, wantReady: true, wantN: 4},
		{name: "second apply is a no-op", d: on, wantReady: true, wantN: 0},
		{name: "no tunnel address: stripped, not ready", d: Desired{Enabled: true, MTU: 1440}, wantN: 1},
		{name: "address back", d: on, wantReady: true, wantN: 1},
		{name: "no IPIP pool: stripped", d: Desired{}, wantN: 1},
		{name: "still none: no-op", d: Desired{}, wantN: 0},
	}
	for _, s := range steps {
		before := k.writes
		st, err := m.Apply(s.d)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if st.Ready != s.wantReady || k.writes-before != s.wantN || len(st.Actions) != s.wantN {
			t.Errorf("%s: ready=%v writes=%d actions=%v, want ready=%v writes=%d", s.name, st.Ready, k.writes-before, st.Actions, s.wantReady, s.wantN)
		}
	}
	if !k.link.Exists || k.link.MTU != 1440 || !k.link.Up || len(k.link.Addrs) != 0 {
		t.Errorf("final link = %+v", k.link)
	}
}

func TestManagerUnsupportedWritesNothing(t *testing.T) {
	k := &fakeKernel{}
	st, err := newManager(k).Apply(Desired{Enabled: true, Addr: addr("10.2.0.1"), MTU: 1480})
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Apply = %v, want ErrUnsupported", err)
	}
	if st.Ready || len(st.Actions) != 0 || k.writes != 0 || k.link.Exists {
		t.Errorf("status %+v, writes %d, link %+v: want nothing", st, k.writes, k.link)
	}
	// A node without IPIP pools is fine on such a kernel.
	if _, err := newManager(k).Apply(Desired{}); err != nil {
		t.Errorf("Apply(disabled) on a kernel without ipip = %v", err)
	}
}

func TestManagerPartialFailureReportsDoneWrites(t *testing.T) {
	k := &fakeKernel{supported: true, failOn: ActAddAddr}
	m := newManager(k)
	st, err := m.Apply(Desired{Enabled: true, Addr: addr("10.2.0.1"), MTU: 1480})
	if err == nil || st.Ready {
		t.Fatalf("Apply = %+v, %v; want an error", st, err)
	}
	if got := fmt.Sprint(st.Actions); got != "[create set-mtu 1480]" {
		t.Errorf("actions done = %s", got)
	}
	k.failOn = ""
	st, err = m.Apply(Desired{Enabled: true, Addr: addr("10.2.0.1"), MTU: 1480})
	if err != nil || !st.Ready || fmt.Sprint(st.Actions) != "[add-addr 10.2.0.1/32 set-up]" {
		t.Errorf("retry = %+v, %v", st, err)
	}
}
