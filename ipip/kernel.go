package ipip

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/gingham-net/gingham/internal/netlinkx"
)

// nlKernel writes tunl0 through netlink: reads and generic writes through
// internal/netlinkx, the ipip-specific writes netlinkx does not offer
// (create, MTU, address removal) through a raw handle on the same namespace.
type nlKernel struct {
	x   *netlinkx.Handle
	raw *netlink.Handle
}

// NewManager returns a Manager for tunl0 in the namespace nsFd (< 0: the
// caller's). Close releases its netlink sockets.
func NewManager(nsFd int, opts ...Option) (*Manager, error) {
	x, err := netlinkx.Open(nsFd)
	if err != nil {
		return nil, err
	}
	var raw *netlink.Handle
	if nsFd >= 0 {
		raw, err = netlink.NewHandleAt(vnetns.NsHandle(nsFd), unix.NETLINK_ROUTE)
	} else {
		raw, err = netlink.NewHandle(unix.NETLINK_ROUTE)
	}
	if err != nil {
		x.Close()
		return nil, fmt.Errorf("open netlink handle: %w", err)
	}
	return newManager(&nlKernel{x: x, raw: raw}, opts...), nil
}

// Close releases the Manager's sockets; tunl0 is left as it is.
func (m *Manager) Close() {
	if k, ok := m.k.(*nlKernel); ok {
		k.x.Close()
		k.raw.Close()
	}
}

func (k *nlKernel) observe() (Observed, error) {
	l, err := k.x.LinkByName(Device)
	if errors.Is(err, netlinkx.ErrNotFound) {
		return Observed{}, nil
	}
	if err != nil {
		return Observed{}, fmt.Errorf("observe %s: %w", Device, err)
	}
	o := Observed{Exists: true, Kind: l.Kind, Index: l.Index, MTU: l.MTU, Up: l.Up}
	if l.Kind != "ipip" {
		return o, nil
	}
	if o.Addrs, err = k.x.AddrList(l.Index); err != nil {
		return Observed{}, fmt.Errorf("observe %s: %w", Device, err)
	}
	return o, nil
}

func (k *nlKernel) create() error {
	return createIPIP(k.raw, Device)
}

// createIPIP adds an ipip link; a kernel that does not know the kind
// answers EOPNOTSUPP ("Unknown device type" in iproute2).
func createIPIP(h *netlink.Handle, name string) error {
	// PMtuDisc as iproute2 defaults it: outer packets carry DF, so a too
	// large inner packet gets "fragmentation needed" instead of fragments.
	err := h.LinkAdd(&netlink.Iptun{LinkAttrs: netlink.LinkAttrs{Name: name}, PMtuDisc: 1})
	if errors.Is(err, unix.EOPNOTSUPP) {
		return fmt.Errorf("create %s: %w", name, errors.Join(ErrUnsupported, err))
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	return nil
}

func (k *nlKernel) setMTU(index, mtu int) error {
	if err := k.raw.LinkSetMTU(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: index}}, mtu); err != nil {
		return fmt.Errorf("set mtu %d: %w", mtu, err)
	}
	return nil
}

func (k *nlKernel) addAddr(index int, p netip.Prefix) error { return k.x.AddrAdd(index, p) }

func (k *nlKernel) delAddr(index int, p netip.Prefix) error {
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}}
	err := k.raw.AddrDel(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: index}}, a)
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("delete address %s: %w", p, err)
	}
	return nil
}

func (k *nlKernel) setUp(index int) error { return k.x.LinkSetUp(index) }

// Supported reports whether this kernel can create ipip links. It probes in
// a throwaway network namespace (the probing thread is discarded with it),
// so the host's links are never touched; on a modular kernel the probe
// loads ipip as creating tunl0 would. A non-nil error means the probe
// itself failed (e.g. no privilege to create a namespace).
func Supported() (bool, error) {
	type result struct {
		ok  bool
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// Never unlocked: the thread ends in the throwaway namespace and the
		// runtime discards it when this goroutine returns.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("probe ipip: unshare netns: %w", err)}
			return
		}
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			ch <- result{err: fmt.Errorf("probe ipip: %w", err)}
			return
		}
		defer h.Close()
		// With ipip loaded, every new namespace already has the fallback tunl0.
		if l, err := h.LinkByName(Device); err == nil && l.Type() == "ipip" {
			ch <- result{ok: true}
			return
		}
		err = createIPIP(h, "gprobe0")
		switch {
		case errors.Is(err, ErrUnsupported):
			ch <- result{}
		case err != nil:
			ch <- result{err: fmt.Errorf("probe ipip: %w", err)}
		default:
			ch <- result{ok: true}
		}
	}()
	r := <-ch
	return r.ok, r.err
}
