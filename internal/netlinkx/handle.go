package netlinkx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// DefaultDumpAttempts bounds how often an interrupted dump is retried.
const DefaultDumpAttempts = 5

// Handle is one netlink socket bound to a namespace. It is not safe for
// concurrent use: give each owner goroutine its own.
type Handle struct {
	h        *netlink.Handle
	nsFd     int // -1: the namespace the Handle was opened in
	attempts int
}

// Open returns a Handle on the namespace nsFd, or on the calling thread's
// namespace when nsFd < 0. The descriptor must stay open while the Handle
// subscribes to events.
func Open(nsFd int) (*Handle, error) {
	var (
		h   *netlink.Handle
		err error
	)
	if nsFd >= 0 {
		h, err = netlink.NewHandleAt(vnetns.NsHandle(nsFd), unix.NETLINK_ROUTE)
	} else {
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
	}
	if err != nil {
		return nil, fmt.Errorf("open netlink handle: %w", err)
	}
	return &Handle{h: h, nsFd: nsFd, attempts: DefaultDumpAttempts}, nil
}

// Close releases the socket.
func (h *Handle) Close() { h.h.Close() }

// dump runs one dump until it completes without NLM_F_DUMP_INTR. reset is
// called before every attempt so no partial result survives.
func (h *Handle) dump(what string, reset func(), run func() error) error {
	var err error
	for range h.attempts {
		reset()
		err = run()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	switch {
	case errors.Is(err, netlink.ErrDumpInterrupted):
		reset()
		return fmt.Errorf("dump %s: %w", what, ErrInconsistentDump)
	case err != nil:
		reset()
		return fmt.Errorf("dump %s: %w", what, err)
	}
	return nil
}

// RouteList dumps the IPv4 routes matching f.
func (h *Handle) RouteList(f RouteFilter) ([]Route, error) {
	var out []Route
	err := h.RouteEach(f, func(r *Route) { out = append(out, *r) }, func() { out = out[:0] })
	return out, err
}

// RouteEach streams the IPv4 routes matching f into fn. Because an
// interrupted dump is restarted, reset is called before every attempt (and
// after a failure): fn's consumer must discard what it collected then.
func (h *Handle) RouteEach(f RouteFilter, fn func(*Route), reset func()) error {
	filter := netlink.Route{Table: f.Table, Protocol: netlink.RouteProtocol(f.Protocol), LinkIndex: f.LinkIndex}
	if filter.Table == 0 {
		filter.Table = TableMain
	}
	mask := netlink.RT_FILTER_TABLE
	if f.Protocol != 0 {
		mask |= netlink.RT_FILTER_PROTOCOL
	}
	if f.LinkIndex != 0 {
		mask |= netlink.RT_FILTER_OIF
	}
	var r Route
	return h.dump("routes", reset, func() error {
		return h.h.RouteListFilteredIter(unix.AF_INET, &filter, mask, func(nr netlink.Route) bool {
			fromNetlink(&nr, &r)
			fn(&r)
			return true
		})
	})
}

// RouteReplace adds r or atomically replaces the route with its key.
func (h *Handle) RouteReplace(r *Route) error {
	if err := h.h.RouteReplace(toNetlink(r)); err != nil {
		return fmt.Errorf("replace route %s: %w", r.Dst, err)
	}
	return nil
}

// RouteAdd adds r; it fails with EEXIST when a route with its key exists.
func (h *Handle) RouteAdd(r *Route) error {
	if err := h.h.RouteAdd(toNetlink(r)); err != nil {
		return fmt.Errorf("add route %s: %w", r.Dst, err)
	}
	return nil
}

// RouteDel deletes r, matched by its key (table, dst, priority) and, when
// set, its protocol, type and path.
func (h *Handle) RouteDel(r *Route) error {
	if err := h.h.RouteDel(toNetlink(r)); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("delete route %s: %w", r.Dst, errors.Join(ErrNotFound, err))
		}
		return fmt.Errorf("delete route %s: %w", r.Dst, err)
	}
	return nil
}

func fromNetlink(nr *netlink.Route, r *Route) {
	*r = Route{
		Table:    nr.Table,
		Protocol: int(nr.Protocol),
		Priority: nr.Priority,
		Type:     RouteType(nr.Type),
		Scope:    Scope(nr.Scope),
		MTU:      nr.MTU,
	}
	if nr.Dst != nil {
		a, _ := netip.AddrFromSlice(nr.Dst.IP)
		ones, _ := nr.Dst.Mask.Size()
		r.Dst = netip.PrefixFrom(a.Unmap(), ones)
	} else {
		r.Dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	}
	if len(nr.MultiPath) > 0 {
		r.MultiPath = make([]NextHop, len(nr.MultiPath))
		for i, nh := range nr.MultiPath {
			r.MultiPath[i] = NextHop{LinkIndex: nh.LinkIndex, Gw: addr(nh.Gw), OnLink: nh.Flags&unix.RTNH_F_ONLINK != 0}
		}
		return
	}
	r.Path = NextHop{LinkIndex: nr.LinkIndex, Gw: addr(nr.Gw), OnLink: nr.Flags&unix.RTNH_F_ONLINK != 0}
}

func toNetlink(r *Route) *netlink.Route {
	nr := &netlink.Route{
		Dst:      &net.IPNet{IP: r.Dst.Addr().AsSlice(), Mask: net.CIDRMask(r.Dst.Bits(), r.Dst.Addr().BitLen())},
		Table:    r.Table,
		Protocol: netlink.RouteProtocol(r.Protocol),
		Priority: r.Priority,
		Type:     int(r.Type),
		Scope:    netlink.Scope(r.Scope),
		MTU:      r.MTU,
		Family:   unix.AF_INET,
	}
	if nr.Table == 0 {
		nr.Table = TableMain
	}
	if len(r.MultiPath) > 0 {
		nr.MultiPath = make([]*netlink.NexthopInfo, len(r.MultiPath))
		for i, nh := range r.MultiPath {
			ni := &netlink.NexthopInfo{LinkIndex: nh.LinkIndex, Gw: ip(nh.Gw)}
			if nh.OnLink {
				ni.Flags = unix.RTNH_F_ONLINK
			}
			nr.MultiPath[i] = ni
		}
		return nr
	}
	nr.LinkIndex = r.Path.LinkIndex
	nr.Gw = ip(r.Path.Gw)
	if r.Path.OnLink {
		nr.Flags = unix.RTNH_F_ONLINK
	}
	return nr
}

func addr(b net.IP) netip.Addr {
	if b == nil {
		return netip.Addr{}
	}
	a, _ := netip.AddrFromSlice(b)
	return a.Unmap()
}

func ip(a netip.Addr) net.IP {
	if !a.IsValid() {
		return nil
	}
	return a.AsSlice()
}

// Subscribe streams link, address and route events of the Handle's namespace
// into ch until ctx ends. A failed subscription is reported as EventError.
func (h *Handle) Subscribe(ctx context.Context, ch chan<- Event) error {
	done := ctx.Done()
	var nsp *vnetns.NsHandle
	if h.nsFd >= 0 {
		ns := vnetns.NsHandle(h.nsFd)
		nsp = &ns
	}
	onErr := func(err error) {
		select {
		case ch <- Event{Kind: EventError, Err: err}:
		case <-done:
		}
	}
	lch := make(chan netlink.LinkUpdate, 64)
	ach := make(chan netlink.AddrUpdate, 64)
	rch := make(chan netlink.RouteUpdate, 256)
	if err := netlink.LinkSubscribeWithOptions(lch, done, netlink.LinkSubscribeOptions{Namespace: nsp, ErrorCallback: onErr}); err != nil {
		return fmt.Errorf("subscribe to links: %w", err)
	}
	if err := netlink.AddrSubscribeWithOptions(ach, done, netlink.AddrSubscribeOptions{Namespace: nsp, ErrorCallback: onErr}); err != nil {
		return fmt.Errorf("subscribe to addresses: %w", err)
	}
	if err := netlink.RouteSubscribeWithOptions(rch, done, netlink.RouteSubscribeOptions{Namespace: nsp, ErrorCallback: onErr}); err != nil {
		return fmt.Errorf("subscribe to routes: %w", err)
	}
	go func() {
		for lch != nil || ach != nil || rch != nil {
			var ev Event
			select {
			case u, ok := <-lch:
				if !ok {
					lch = nil
					continue
				}
				ev = Event{Kind: EventLink, Deleted: u.Header.Type == unix.RTM_DELLINK, Link: linkFrom(u.Link)}
			case u, ok := <-ach:
				if !ok {
					ach = nil
					continue
				}
				a, _ := netip.AddrFromSlice(u.LinkAddress.IP)
				ones, _ := u.LinkAddress.Mask.Size()
				ev = Event{Kind: EventAddr, Deleted: !u.NewAddr, Addr: netip.PrefixFrom(a.Unmap(), ones)}
			case u, ok := <-rch:
				if !ok {
					rch = nil
					continue
				}
				ev = Event{Kind: EventRoute, Deleted: u.Type == unix.RTM_DELROUTE}
				fromNetlink(&u.Route, &ev.Route)
			}
			select {
			case ch <- ev:
			case <-done:
				return
			}
		}
	}()
	return nil
}
