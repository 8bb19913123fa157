package main

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gingham-net/gingham/api/model"
	"github.com/gingham-net/gingham/felix/routetable"
	"github.com/gingham-net/gingham/ipip"
)

// transferSize is sent over every TCP flow: enough for many full-size
// segments.
const transferSize = 256 << 10

func run(r *results) {
	w, err := build()
	r.check("topology", err, "2 racks x 2 nodes, 1 pod per node, attacker on rack A")
	if err != nil {
		return
	}
	sinks := map[*node]*atomic.Int64{}
	for _, n := range w.nodes {
		s, err := servePod(n.pod)
		if err != nil {
			r.check("pod-servers", err, "%s", n.pod.name)
			return
		}
		sinks[n] = s
	}
	for _, mode := range []model.Encap{model.EncapAlways, model.EncapCrossSubnet, model.EncapNever} {
		m := modeName(mode)
		if mode == model.EncapNever {
			// Never needs a routed path between the racks: the ToR learns
			// every block from its node.
			r.check(m+"/tor-routes", w.routerRoutes(true), "router routes each block via its node")
		}
		if !applyMode(r, w, mode) {
			return
		}
		flows(r, w, mode)
		hostSource(r, w, mode)
		if mode == model.EncapAlways {
			mtu(r, w)
			forged(r, w, sinks[w.nodes[0]])
		}
	}
}

func modeName(m model.Encap) string {
	return map[model.Encap]string{model.EncapAlways: "always", model.EncapCrossSubnet: "cross-subnet", model.EncapNever: "never"}[m]
}

// applyMode is one agent sync per node for a pool with mode: tunl0, the
// filter, then the routes; then a second sync that must change nothing.
func applyMode(r *results, w *world, mode model.Encap) bool {
	m := modeName(mode)
	pools := []model.Pool{{Name: "pool", CIDR: poolCIDR, BlockSize: 26, IPIPMode: mode}}
	peers := ipip.PeerAddrs(w.modelNodes())
	ok := true
	for pass := range 2 {
		for _, n := range w.nodes {
			d := ipip.Desire(pools, n.tunnel, underlayMTU)
			st, err := n.tun.Apply(d)
			if err == nil {
				err = n.filter.Apply(peers, false)
			}
			var res routetable.Result
			if err == nil {
				if err = n.rt.SetRoutes(targets(w, n, mode)); err == nil {
					res, err = n.rt.Apply()
				}
			}
			if err == nil && res.Pending+res.Conflicts > 0 {
				err = fmt.Errorf("routes pending %d, conflicts %d", res.Pending, res.Conflicts)
			}
			if pass == 0 {
				if err == nil {
					err = checkTunnel(n, d)
				}
				r.check(fmt.Sprintf("%s/sync/%s", m, n.name), err, "tunl0 actions %v ready=%v; routes replaced %d deleted %d", st.Actions, st.Ready, res.Replaced, res.Deleted)
			} else {
				// felix/routetable rewrites a route whose next hop names no
				// interface on every Apply (the kernel fills in the index,
				// the desired route has none): reported as a NOTE, not a
				// failure of this package. Anything else is a failure.
				gwOnly := 0
				for _, t := range targets(w, n, mode) {
					if t.NextHops[0].Iface == "" {
						gwOnly++
					}
				}
				if err == nil && (len(st.Actions) > 0 || res.Replaced > gwOnly || res.Deleted > 0) {
					err = fmt.Errorf("second sync wrote: tunl0 %v, routes replaced %d deleted %d", st.Actions, res.Replaced, res.Deleted)
				}
				if err == nil && res.Replaced > 0 {
					fmt.Printf("%s NOTE %s/resync/%s: felix/routetable rewrote %d gateway-only route(s) that were already right\n", Prefix, m, n.name, res.Replaced)
				}
				r.check(fmt.Sprintf("%s/resync-no-op/%s", m, n.name), err, "tunl0 and filter untouched; routes unchanged %d", res.Unchanged)
			}
			ok = ok && err == nil
		}
	}
	return ok
}

func targets(w *world, n *node, mode model.Encap) []routetable.Target {
	ts := []routetable.Target{{Dst: netip.PrefixFrom(n.pod.ip, 32), NextHops: []routetable.NextHop{{Iface: n.pod.host}}}}
	for _, o := range w.nodes {
		if o != n {
			ts = append(ts, routetable.Target{Dst: o.block, NextHops: []routetable.NextHop{nextHop(mode, n, o)}})
		}
	}
	return ts
}

// checkTunnel reads tunl0 back: MTU, up, exactly the desired address.
func checkTunnel(n *node, d ipip.Desired) error {
	l, err := n.x.LinkByName(ipip.Device)
	if err != nil {
		return err
	}
	addrs, err := n.x.AddrList(l.Index)
	if err != nil {
		return err
	}
	var want []netip.Prefix
	if d.Enabled && d.Addr.IsValid() {
		want = []netip.Prefix{netip.PrefixFrom(d.Addr, 32)}
	}
	if !slices.Equal(addrs, want) {
		return fmt.Errorf("tunl0 addresses %v, want %v", addrs, want)
	}
	if d.Enabled && (l.MTU != d.MTU || !l.Up || l.Kind != "ipip") {
		return fmt.Errorf("tunl0 %+v, want ipip, up, mtu %d", l, d.MTU)
	}
	return nil
}

// flows runs ping and a TCP transfer between every ordered pair of pods,
// capturing on the destination node's uplink.
func flows(r *results, w *world, mode model.Encap) {
	m := modeName(mode)
	for _, a := range w.nodes {
		for _, b := range w.nodes {
			if a == b {
				continue
			}
			wantEncap := ipip.Encapsulate(mode, a.addr, b.addr.Addr())
			b.cap.reset()
			err := ping(a.pod.ns, b.pod.ip)
			var peer netip.Addr
			var mss int
			if err == nil {
				peer, mss, err = tcpTransfer(a.pod.ns, b.pod.ip, transferSize)
			}
			if err == nil && peer != a.pod.ip {
				err = fmt.Errorf("server saw source %s, want %s", peer, a.pod.ip)
			}
			if err == nil && mss != podMTU-40 && mss != podMTU-52 {
				err = fmt.Errorf("MSS %d, want %d (or %d with timestamps)", mss, podMTU-40, podMTU-52)
			}
			time.Sleep(150 * time.Millisecond) // let the capture drain
			s := b.cap.stats(a.pod.ip, b.pod.ip)
			if err == nil {
				err = expectEncap(s, wantEncap)
			}
			r.check(fmt.Sprintf("%s/flow/%s->%s", m, a.name, b.name), err, "ping+TCP %dKiB mss %d, encapsulated=%v, %s",
				transferSize>>10, mss, wantEncap, s)
		}
	}
}

func expectEncap(s flowStats, want bool) error {
	switch {
	case s.frags > 0:
		return fmt.Errorf("%d fragments on the underlay", s.frags)
	case want && (s.encap == 0 || s.plain > 0):
		return errors.New("want only IPIP on the underlay")
	case !want && (s.plain == 0 || s.encap > 0):
		return errors.New("want no IPIP on the underlay")
	}
	return nil
}

// hostSource checks the source address of host-originated traffic to
// remote pods: the tunnel address through tunl0, the uplink address
// otherwise (either way the reply comes back).
func hostSource(r *results, w *world, mode model.Encap) {
	a := w.nodes[0]
	for _, b := range w.nodes[1:] {
		want := a.addr.Addr()
		if ipip.Encapsulate(mode, a.addr, b.addr.Addr()) {
			want = a.tunnel
		}
		peer, _, err := tcpTransfer(a.ns, b.pod.ip, 64<<10)
		if err == nil && peer != want {
			err = fmt.Errorf("pod saw source %s, want %s", peer, want)
		}
		r.check(fmt.Sprintf("%s/host-source/%s->pod-%s", modeName(mode), a.name, b.name), err, "source %s", peer)
	}
}

// mtu proves the tunnel MTU end to end: a DF datagram filling the pod MTU
// crosses racks as a 1500-byte IPIP packet; one byte more fails locally.
func mtu(r *results, w *world) {
	a, b := w.nodes[0], w.nodes[2]
	b.cap.reset()
	full := podMTU - 20 - 8
	err := udpDF(a.pod.ns, b.pod.ip, full)
	time.Sleep(150 * time.Millisecond)
	s := b.cap.stats(a.pod.ip, b.pod.ip)
	if err == nil && s.maxEncapUDP != underlayMTU {
		err = fmt.Errorf("largest outer packet %d bytes, want %d", s.maxEncapUDP, underlayMTU)
	}
	if err == nil && s.frags > 0 {
		err = fmt.Errorf("%d fragments", s.frags)
	}
	r.check("always/mtu/full-size-DF", err, "%d-byte inner packet, outer %d bytes, %s", podMTU, s.maxEncapUDP, s)
	err = udpDF(a.pod.ns, b.pod.ip, full+1)
	if err == nil {
		err = errors.New("an oversized DF datagram went through")
	} else if errors.Is(err, unix.EMSGSIZE) {
		err = nil
	}
	r.check("always/mtu/oversize-refused", err, "%d-byte DF datagram refused by the pod's MTU", podMTU+1)
}

// forged: IPIP from a non-node address is dropped by the filter; the same
// packet is delivered when the filter is absent (so the drop is the
// filter's doing), and the filter comes back.
func forged(r *results, w *world, sink *atomic.Int64) {
	a := w.nodes[0]
	spoofed := netip.MustParseAddr("10.99.0.1")
	send := func() (int64, error) {
		before := sink.Load()
		for range 3 {
			if err := forgeIPIP(w.attacker, a.addr.Addr(), spoofed, a.pod.ip); err != nil {
				return 0, err
			}
		}
		time.Sleep(time.Second)
		return sink.Load() - before, nil
	}
	st0, _ := a.filter.State()
	got, err := send()
	st1, serr := a.filter.State()
	err = errors.Join(err, serr)
	if err == nil && (got != 0 || st1.Dropped-st0.Dropped < 3) {
		err = fmt.Errorf("pod received %d forged datagrams, filter dropped %d", got, st1.Dropped-st0.Dropped)
	}
	r.check("always/forged-ipip/dropped", err, "attacker 192.168.1.66 -> %s: pod received %d, filter drop counter +%d", a.addr.Addr(), got, st1.Dropped-st0.Dropped)

	err = a.filter.Remove()
	if err == nil {
		got, err = send()
	}
	if err == nil && got == 0 {
		err = errors.New("forged packet not delivered even without the filter: the test proves nothing")
	}
	r.check("always/forged-ipip/control-without-filter", err, "without the filter the pod received %d", got)
	r.check("always/forged-ipip/filter-restored", a.filter.Apply(ipip.PeerAddrs(w.modelNodes()), true), "")
}
