package autodetect

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// host is a typical node: loopback, two uplinks, a docker bridge, pod
// veths, tunl0, a down interface and a link-local-only one.
var host = []Iface{
	{Index: 1, Name: "lo", Up: true, Addrs: pfx("127.0.0.1/8")},
	{Index: 2, Name: "eth0", Up: true, Addrs: pfx("169.254.3.3/16", "10.0.0.5/24")},
	{Index: 3, Name: "eth1", Up: true, Addrs: pfx("192.168.7.9/22")},
	{Index: 4, Name: "docker0", Up: true, Addrs: pfx("172.17.0.1/16")},
	{Index: 5, Name: "tunl0", Up: true, Addrs: pfx("10.244.1.0/32")},
	{Index: 6, Name: "cali1234567890a", Up: true},
	{Index: 7, Name: "ens9", Up: false, Addrs: pfx("10.9.9.9/24")},
	{Index: 8, Name: "veth0abc", Up: true, Addrs: pfx("172.18.0.1/16")},
	{Index: 9, Name: "lldp0", Up: true, Addrs: pfx("169.254.9.9/16")},
}

func pfx(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func TestSelect(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		ifaces  []Iface // nil: host
		want    string  // prefix; "" means ErrNotFound
		wantIfc string
	}{
		// Highest index first: eth1 before eth0; docker0, tunl0, cali*,
		// veth* and the down ens9 are skipped; lldp0 has only link-local.
		{name: "first-found", method: "first-found", want: "192.168.7.9/22", wantIfc: "eth1"},
		{name: "empty is first-found", method: "", want: "192.168.7.9/22", wantIfc: "eth1"},
		{name: "first-found skips link-local on the same interface", method: "first-found",
			ifaces: []Iface{{Index: 2, Name: "eth0", Up: true, Addrs: pfx("169.254.3.3/16", "10.0.0.5/24")}}, want: "10.0.0.5/24", wantIfc: "eth0"},
		{name: "first-found with only excluded interfaces", method: "first-found",
			ifaces: []Iface{{Index: 1, Name: "docker0", Up: true, Addrs: pfx("172.17.0.1/16")}, {Index: 2, Name: "lo", Up: true, Addrs: pfx("127.0.0.1/8")}}},
		{name: "interface exact", method: "interface=^eth0$", want: "10.0.0.5/24", wantIfc: "eth0"},
		{name: "interface unanchored as Calico", method: "interface=eth0", want: "172.18.0.1/16", wantIfc: "veth0abc"},
		{name: "interface list", method: "interface=^ens.*, ^eth0$", want: "10.0.0.5/24", wantIfc: "eth0"},
		{name: "interface has no default exclusions", method: "interface=docker0", want: "172.17.0.1/16", wantIfc: "docker0"},
		{name: "interface down", method: "interface=^ens9$"},
		{name: "interface without match", method: "interface=^wlan"},
		{name: "skip-interface", method: "skip-interface=eth1", want: "10.0.0.5/24", wantIfc: "eth0"},
		{name: "skip-interface keeps the default exclusions", method: "skip-interface=^eth", want: ""},
		{name: "cidr", method: "cidr=10.0.0.0/16", want: "10.0.0.5/24", wantIfc: "eth0"},
		{name: "cidr takes the highest index, even tunl0", method: "cidr=10.0.0.0/8", want: "10.244.1.0/32", wantIfc: "tunl0"},
		{name: "cidr list, host bits ignored", method: "cidr=10.0.0.0/24, 192.168.4.1/22", want: "192.168.7.9/22", wantIfc: "eth1"},
		{name: "cidr has no default exclusions", method: "cidr=172.17.0.0/16", want: "172.17.0.1/16", wantIfc: "docker0"},
		{name: "cidr never link-local", method: "cidr=169.254.0.0/16"},
		{name: "cidr never loopback", method: "cidr=127.0.0.0/8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse(tc.method)
			if err != nil {
				t.Fatal(err)
			}
			ifaces := tc.ifaces
			if ifaces == nil {
				ifaces = host
			}
			got, err := Select(m, ifaces)
			if tc.want == "" {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("got %+v, %v; want ErrNotFound", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Prefix.String() != tc.want || got.Interface != tc.wantIfc {
				t.Errorf("got %s on %s, want %s on %s", got.Prefix, got.Interface, tc.want, tc.wantIfc)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, s := range []string{"firstfound", "interface=", "interface=eth0,", "interface=(", "skip-interface=[", "cidr=10.0.0.0", "cidr=fd00::/8",
		"can-reach=", "kubernetes-internal-ip=x", "FIRST-FOUND"} {
		if m, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", s, m)
		}
	}
	for _, s := range []string{"first-found", " can-reach=8.8.8.8 ", "can-reach=example.com", "kubernetes-internal-ip", "cidr=10.0.0.0/8"} {
		if _, err := Parse(s); err != nil {
			t.Errorf("Parse(%q): %v", s, err)
		}
	}
}

// fakeHost answers SourceFor from a table.
type fakeHost struct {
	ifaces []Iface
	routes map[string]string // target -> source
}

var _ Host = fakeHost{}

func (f fakeHost) Interfaces() ([]Iface, error) { return f.ifaces, nil }

func (f fakeHost) SourceFor(_ context.Context, target string) (netip.Addr, error) {
	src, ok := f.routes[target]
	if !ok {
		return netip.Addr{}, errors.New("network is unreachable")
	}
	return netip.MustParseAddr(src), nil
}

func TestDetect(t *testing.T) {
	h := fakeHost{ifaces: host, routes: map[string]string{"10.0.0.1": "10.0.0.5", "gw.example": "192.168.7.9", "203.0.113.1": "198.51.100.1"}}
	internal := func(ip string, err error) InternalIP {
		return func(context.Context) (netip.Addr, error) {
			if err != nil {
				return netip.Addr{}, err
			}
			return netip.MustParseAddr(ip), nil
		}
	}
	tests := []struct {
		name     string
		method   string
		internal InternalIP
		want     string
		wantErr  string
	}{
		{name: "can-reach takes the prefix of the source's interface", method: "can-reach=10.0.0.1", want: "10.0.0.5/24"},
		{name: "can-reach by name", method: "can-reach=gw.example", want: "192.168.7.9/22"},
		{name: "can-reach unreachable", method: "can-reach=8.8.8.8", wantErr: "unreachable"},
		{name: "can-reach source on no interface", method: "can-reach=203.0.113.1", wantErr: "on no interface"},
		{name: "internal ip", method: "kubernetes-internal-ip", internal: internal("10.0.0.5", nil), want: "10.0.0.5/24"},
		{name: "internal ip not local", method: "kubernetes-internal-ip", internal: internal("10.1.1.1", nil), wantErr: "on no interface"},
		{name: "internal ip unknown", method: "kubernetes-internal-ip", internal: internal("", errors.New("node n1 has no InternalIP")), wantErr: "no InternalIP"},
		{name: "internal ip outside Kubernetes", method: "kubernetes-internal-ip", wantErr: "no Kubernetes Node"},
		{name: "scanning methods go through Select", method: "interface=^eth0$", want: "10.0.0.5/24"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse(tc.method)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Detect(context.Background(), m, h, tc.internal)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), tc.method) {
					t.Fatalf("got %+v, %v; want an error naming the method and %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Prefix.String() != tc.want {
				t.Errorf("got %s, want %s", got.Prefix, tc.want)
			}
		})
	}
}

// TestSystem reads the real host: loopback is always there, and the route
// to 127.0.0.1 has a loopback source.
func TestSystem(t *testing.T) {
	ifaces, err := System{}.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := PrefixOf(ifaces, netip.MustParseAddr("127.0.0.1")); err != nil {
		t.Errorf("loopback not listed: %v (%+v)", err, ifaces)
	}
	src, err := System{}.SourceFor(context.Background(), "127.0.0.1")
	if err != nil || !src.IsLoopback() {
		t.Errorf("source for 127.0.0.1 = %s, %v", src, err)
	}
}
