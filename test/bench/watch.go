package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// fibWatch follows the IPv4 routes of one kernel protocol inside one
// namespace through netlink route events (RTNLGRP_IPV4_ROUTE), so that the
// observer costs almost nothing while the system under test programs
// 100k routes. If the event socket overflows, count falls back to a dump.
// Besides the current set it keeps, per prefix, when the route last
// appeared and disappeared and how often it was deleted (B6, B10).
type fibWatch struct {
	nsName  string
	proto   netlink.RouteProtocol
	within  netip.Prefix
	unicast bool // ignore blackholes and other non-unicast routes

	ns     netns.NsHandle
	handle *netlink.Handle
	done   chan struct{}

	mu       sync.Mutex
	set      map[netip.Prefix]struct{}
	added    map[netip.Prefix]time.Time // last RTM_NEWROUTE
	deleted  map[netip.Prefix]time.Time // last RTM_DELROUTE
	dels     map[netip.Prefix]int       // RTM_DELROUTE events since resetEvents
	overflow bool
}

// watchOptions narrow what a fibWatch counts.
type watchOptions struct {
	unicastOnly bool
}

func newFIBWatch(nsName string, proto netlink.RouteProtocol, within netip.Prefix) (*fibWatch, error) {
	return newFIBWatchOpts(nsName, proto, within, watchOptions{})
}

func newFIBWatchOpts(nsName string, proto netlink.RouteProtocol, within netip.Prefix, o watchOptions) (*fibWatch, error) {
	ns, err := netns.GetFromName(nsName)
	if err != nil {
		return nil, fmt.Errorf("watch routes in %s: %w", nsName, err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("watch routes in %s: handle: %w", nsName, err)
	}
	w := &fibWatch{nsName: nsName, proto: proto, within: within, unicast: o.unicastOnly, ns: ns, handle: h,
		done: make(chan struct{}), set: map[netip.Prefix]struct{}{},
		added: map[netip.Prefix]time.Time{}, deleted: map[netip.Prefix]time.Time{}, dels: map[netip.Prefix]int{}}
	ch := make(chan netlink.RouteUpdate, 4096)
	opts := netlink.RouteSubscribeOptions{
		Namespace:              &w.ns,
		ReceiveBufferSize:      64 << 20,
		ReceiveBufferForceSize: true,
		ErrorCallback: func(err error) {
			w.mu.Lock()
			w.overflow = true
			w.mu.Unlock()
		},
	}
	if err := netlink.RouteSubscribeWithOptions(ch, w.done, opts); err != nil {
		w.Close()
		return nil, fmt.Errorf("watch routes in %s: subscribe: %w", nsName, err)
	}
	go func() {
		for u := range ch {
			w.apply(u)
		}
		// The subscription ended (error): events can no longer be trusted.
		w.mu.Lock()
		w.overflow = true
		w.mu.Unlock()
	}()
	if err := w.resync(); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

// matches reports whether a route is one this watch counts.
func (w *fibWatch) matches(r *netlink.Route) (netip.Prefix, bool) {
	if r.Protocol != w.proto || r.Dst == nil {
		return netip.Prefix{}, false
	}
	if w.unicast && r.Type != unix.RTN_UNICAST {
		return netip.Prefix{}, false
	}
	if r.Table != 0 && r.Table != unix.RT_TABLE_MAIN {
		return netip.Prefix{}, false
	}
	p, ok := prefixOf(r.Dst)
	if !ok || !w.within.Overlaps(p) {
		return netip.Prefix{}, false
	}
	return p, true
}

func (w *fibWatch) apply(u netlink.RouteUpdate) {
	now := time.Now()
	p, ok := w.matches(&u.Route)
	if !ok {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch u.Type {
	case unix.RTM_NEWROUTE:
		w.set[p] = struct{}{}
		w.added[p] = now
	case unix.RTM_DELROUTE:
		delete(w.set, p)
		w.deleted[p] = now
		w.dels[p]++
	}
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}

// dump lists the matching routes with a kernel dump.
func (w *fibWatch) dump() (map[netip.Prefix]struct{}, error) {
	routes, err := w.handle.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: w.proto, Table: unix.RT_TABLE_MAIN},
		netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("dump routes in %s: %w", w.nsName, err)
	}
	set := make(map[netip.Prefix]struct{}, len(routes))
	for i := range routes {
		if p, ok := w.matches(&routes[i]); ok {
			set[p] = struct{}{}
		}
	}
	return set, nil
}

// resync replaces the event-built set with a dump (used at start and to
// verify a result).
func (w *fibWatch) resync() error {
	set, err := w.dump()
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.set = set
	w.mu.Unlock()
	return nil
}

// count is the number of matching routes now, and whether it came from
// events (true) or had to be dumped because events overflowed (false).
func (w *fibWatch) count() (int, bool, error) {
	w.mu.Lock()
	n, ov := len(w.set), w.overflow
	w.mu.Unlock()
	if !ov {
		return n, true, nil
	}
	set, err := w.dump()
	if err != nil {
		return 0, false, err
	}
	return len(set), false, nil
}

// has reports whether p is in the set now (from events).
func (w *fibWatch) has(p netip.Prefix) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.set[p]
	return ok
}

// addedAt returns when p was last added (zero if never, since the watch
// started).
func (w *fibWatch) addedAt(p netip.Prefix) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.added[p]
}

// deletedAt returns when p was last deleted (zero if never).
func (w *fibWatch) deletedAt(p netip.Prefix) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.deleted[p]
}

// deletions is how many times p was deleted since resetEvents.
func (w *fibWatch) deletions(p netip.Prefix) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dels[p]
}

// resetEvents forgets the per-prefix event history (not the set).
func (w *fibWatch) resetEvents() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.added = map[netip.Prefix]time.Time{}
	w.deleted = map[netip.Prefix]time.Time{}
	w.dels = map[netip.Prefix]int{}
}

// waitFor polls until cond holds on the watch (every 5 ms).
func (w *fibWatch) waitFor(ctx context.Context, what string, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: wait for %s: %w", w.nsName, what, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// progress is the outcome of one wait: when the count first reached 50 %,
// 99 % and 100 % of the goal (or, for a withdrawal, fell to 50 %, 1 %, 0).
type progress struct {
	t50, t99, t100 time.Duration
	eventsOnly     bool
}

// waitCount polls the count every 5 ms (every 250 ms when it must dump)
// until pred(count) holds for the final goal. When the count has not moved
// for 2 s, the event-built set is checked against a dump (and replaced by
// it), so that a lost event cannot stall a cell; a timeout names the
// prefixes a dump still finds (or misses).
func (w *fibWatch) waitCount(ctx context.Context, start time.Time, n int, adding bool) (progress, error) {
	var pr progress
	pr.eventsOnly = true
	reached := func(c int, frac float64) bool {
		if adding {
			return float64(c) >= frac*float64(n)
		}
		return float64(n-c) >= frac*float64(n)
	}
	last, lastChange := -1, time.Now()
	for {
		c, fromEvents, err := w.count()
		if err != nil {
			return pr, err
		}
		if c != last {
			last, lastChange = c, time.Now()
		} else if fromEvents && time.Since(lastChange) > 2*time.Second {
			set, err := w.dump()
			if err != nil {
				return pr, err
			}
			if len(set) != c {
				logf("  %s: route events said %d routes, a dump says %d; using the dump", w.nsName, c, len(set))
				w.mu.Lock()
				w.set = set
				w.mu.Unlock()
				pr.eventsOnly = false
				continue
			}
			lastChange = time.Now()
		}
		pr.eventsOnly = pr.eventsOnly && fromEvents
		now := time.Since(start)
		if pr.t50 == 0 && reached(c, 0.5) {
			pr.t50 = now
		}
		if pr.t99 == 0 && reached(c, 0.99) {
			pr.t99 = now
		}
		if reached(c, 1) {
			pr.t100 = now
			// Confirm with a dump that the events did not lie.
			set, err := w.dump()
			if err != nil {
				return pr, err
			}
			if (adding && len(set) >= n) || (!adding && len(set) == 0) {
				return pr, nil
			}
			_ = w.resync()
			pr.t50, pr.t99, pr.t100 = 0, 0, 0
		}
		interval := 5 * time.Millisecond
		if !fromEvents {
			interval = 250 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			detail := ""
			if set, err := w.dump(); err == nil {
				var some []string
				for p := range set {
					if len(some) == 5 {
						break
					}
					some = append(some, p.String())
				}
				detail = fmt.Sprintf("; a dump finds %d routes (e.g. %v)", len(set), some)
			}
			return pr, fmt.Errorf("%s: %d of %d routes (adding=%v)%s: %w", w.nsName, c, n, adding, detail, ctx.Err())
		case <-time.After(interval):
		}
	}
}

func (w *fibWatch) Close() {
	select {
	case <-w.done:
	default:
		close(w.done)
	}
	w.handle.Close()
	w.ns.Close()
}
