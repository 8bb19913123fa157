package autodetect

import (
	"context"
	"fmt"
	"net"
	"net/netip"
)

// Host is what detection reads from the machine.
type Host interface {
	// Interfaces lists the interfaces with their IPv4 addresses.
	Interfaces() ([]Iface, error)
	// SourceFor returns the source address the kernel would use to reach
	// target (an IP address or a host name), sending nothing.
	SourceFor(ctx context.Context, target string) (netip.Addr, error)
}

// InternalIP returns the Node's InternalIP (kubernetes-internal-ip).
type InternalIP func(ctx context.Context) (netip.Addr, error)

// Detect runs m against the host; internalIP is consulted only by
// kubernetes-internal-ip.
func Detect(ctx context.Context, m Method, h Host, internalIP InternalIP) (Result, error) {
	ifaces, err := h.Interfaces()
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", m, err)
	}
	var addr netip.Addr
	switch m.Kind {
	case CanReach:
		if addr, err = h.SourceFor(ctx, m.Target); err != nil {
			return Result{}, fmt.Errorf("%s: %w", m, err)
		}
	case KubernetesInternalIP:
		if internalIP == nil {
			return Result{}, fmt.Errorf("%s: no Kubernetes Node to read", m)
		}
		if addr, err = internalIP(ctx); err != nil {
			return Result{}, fmt.Errorf("%s: %w", m, err)
		}
	default:
		return Select(m, ifaces)
	}
	r, err := PrefixOf(ifaces, addr)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", m, err)
	}
	return r, nil
}

// System is the real host, read through the standard library.
type System struct{}

var _ Host = System{}

// Interfaces lists the host's interfaces and their IPv4 addresses.
func (System) Interfaces() ([]Iface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	out := make([]Iface, 0, len(ifs))
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			return nil, fmt.Errorf("addresses of %s: %w", ifc.Name, err)
		}
		i := Iface{Index: ifc.Index, Name: ifc.Name, Up: ifc.Flags&net.FlagUp != 0}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP.To4())
			if !ok {
				continue
			}
			ones, _ := ipn.Mask.Size()
			i.Addrs = append(i.Addrs, netip.PrefixFrom(ip, ones))
		}
		out = append(out, i)
	}
	return out, nil
}

// SourceFor connects a UDP socket to target (port 80, as Calico does) and
// reads the local address the kernel bound it to: a route lookup, with no
// packet sent.
func (System) SourceFor(ctx context.Context, target string) (netip.Addr, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp4", net.JoinHostPort(target, "80"))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("route to %s: %w", target, err)
	}
	defer conn.Close()
	ua, ok := conn.LocalAddr().(*net.UDPAddr)
	if !ok {
		return netip.Addr{}, fmt.Errorf("route to %s: no local address", target)
	}
	a, ok := netip.AddrFromSlice(ua.IP.To4())
	if !ok {
		return netip.Addr{}, fmt.Errorf("route to %s: local address %s is not IPv4", target, ua.IP)
	}
	return a, nil
}
