package attach

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/gingham-net/gingham/internal/logging"
	"github.com/gingham-net/gingham/internal/netlinkx"
	"github.com/gingham-net/gingham/internal/netns"
)

// opTimeout bounds one CNI command, IPAM and API calls included.
const opTimeout = 30 * time.Second

func cmdAdd(r *request) (err error) {
	args, conf, namespace, pod := r.args, r.conf, r.namespace, r.pod
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()

	// The namespace first: an ADD into one that does not exist takes nothing.
	podNS, err := netns.Open(args.Netns)
	if err != nil {
		return err
	}
	defer podNS.Close()

	// A container that already holds an address (a repeated ADD) keeps it
	// whatever happens below: a failure gives back only an address this
	// call allocated.
	held := ipamHolds(ctx, conf, args)
	ipamRes, err := invoke.DelegateAdd(ctx, conf.IPAM.Type, args.StdinData, nil)
	if err != nil {
		return fmt.Errorf("ipam %s add: %w", conf.IPAM.Type, err)
	}
	// err is the named result: every return below assigns it, none shadows it.
	defer func() {
		if err == nil {
			return
		}
		if held {
			r.log.Info("add failed; the container's address predates this call and is kept")
			return
		}
		if derr := invoke.DelegateDel(ctx, conf.IPAM.Type, args.StdinData, nil); derr != nil {
			err = errors.Join(err, fmt.Errorf("release address after failed add: %w", derr))
		}
	}()
	res, err := current.NewResultFromResult(ipamRes)
	if err != nil {
		return fmt.Errorf("convert ipam result: %w", err)
	}
	podIP, err := singleIPv4(res)
	if err != nil {
		return err
	}

	hostName := hostVeth(conf, namespace, pod, args.ContainerID)
	att, err := attach(conf, args, podNS, hostName, podIP)
	if err != nil {
		return err
	}
	r.log.Debug("attached", zap.String(logging.KeyIface, hostName), zap.Stringer("podIP", podIP), zap.Bool("reused", !att.created))
	if conf.Kubeconfig != "" && namespace != "" && pod != "" {
		if err = annotatePod(ctx, conf.Kubeconfig, namespace, pod, podIP, args.ContainerID); err != nil {
			if att.created {
				detach(nil, "", hostName)
			}
			return err
		}
	}

	res.Interfaces = []*current.Interface{
		{Name: hostName, Mac: hostMAC.String()},
		{Name: args.IfName, Mac: att.podMAC.String(), Sandbox: args.Netns},
	}
	for _, ipc := range res.IPs {
		ipc.Interface = current.Int(1)
		ipc.Gateway = nil
		if ipc.Address.IP.To4() != nil {
			ipc.Address.Mask = net.CIDRMask(32, 32)
		}
	}
	_, dflt, _ := net.ParseCIDR("0.0.0.0/0")
	res.Routes = []*types.Route{{Dst: *dflt, GW: net.ParseIP(GatewayIP)}}
	return types.PrintResult(res, conf.CNIVersion)
}

// ipamHolds reports whether the IPAM plugin already holds an address for
// this container: its CHECK, asked before ADD, succeeds (gingham-ipam and
// host-local answer from their records; a plugin that cannot answer counts
// as holding nothing, so a failure releases as before).
func ipamHolds(ctx context.Context, conf *NetConf, args *skel.CmdArgs) bool {
	return invoke.DelegateCheck(ctx, conf.IPAM.Type, args.StdinData, nil) == nil
}

func singleIPv4(res *current.Result) (netip.Addr, error) {
	var out netip.Addr
	for _, ipc := range res.IPs {
		a, ok := netip.AddrFromSlice(ipc.Address.IP)
		if !ok {
			continue
		}
		if a = a.Unmap(); a.Is4() {
			if out.IsValid() {
				return netip.Addr{}, errors.New("ipam returned more than one IPv4 address")
			}
			out = a
		}
	}
	if !out.IsValid() {
		return netip.Addr{}, errors.New("ipam returned no IPv4 address")
	}
	return out, nil
}

// attachment is what attach did.
type attachment struct {
	podMAC  net.HardwareAddr // of the pod's interface, as it is
	created bool             // the pair is new (false: a repeated ADD re-used it)
}

// attach configures both ends. The pair of an earlier ADD of this very
// attachment (same network, container and interface, its peer still in the
// pod's namespace holding the address) is re-used as it is, so a repeated
// ADD does not change the pod's MAC under the agent; anything else under
// the host-side name is replaced by a new pair. Every step below the pair's
// creation is idempotent. On failure a pair this call created is removed; a
// re-used one is left as it was.
func attach(conf *NetConf, args *skel.CmdArgs, podNS *netns.NS, hostName string, podIP netip.Addr) (att attachment, err error) {
	host, err := netlinkx.Open(-1)
	if err != nil {
		return att, err
	}
	defer host.Close()
	podH, err := netlinkx.Open(podNS.Fd())
	if err != nil {
		return att, err
	}
	defer podH.Close()

	hl, pl, reuse := existingPair(host, podH, conf, args, hostName, podIP)
	if !reuse {
		if hl, pl, err = newPair(host, podH, conf, args, podNS, hostName); err != nil {
			return att, err
		}
		att.created = true
		defer func() {
			if err != nil {
				detach(nil, "", hostName)
			}
		}()
	}
	att.podMAC = pl.MAC
	if err = hostSysctls(hostName); err != nil {
		return att, err
	}
	if err = host.LinkSetUp(hl.Index); err != nil {
		return att, err
	}

	// Pod side: eth0 up with the /32 and the two routes via 169.254.1.1.
	if err = podH.LinkSetUp(pl.Index); err != nil {
		return att, err
	}
	if err = podH.AddrAdd(pl.Index, netip.PrefixFrom(podIP, 32)); err != nil && !errors.Is(err, unix.EEXIST) {
		return att, err
	}
	gw := netip.MustParseAddr(GatewayIP)
	for _, r := range podRoutes(pl.Index, gw) {
		if err = podH.RouteAdd(&r); err != nil && (att.created || !errors.Is(err, unix.EEXIST)) {
			return att, fmt.Errorf("pod %s: %w", args.IfName, err)
		}
	}

	// Host side: the /32, tagged with our protocol, and the pod's MAC.
	if err = hostRoute(host, conf, hl, hostName, podIP); err != nil {
		return att, err
	}
	if err = host.NeighSetPermanent(netlinkx.Neigh{LinkIndex: hl.Index, IP: podIP, MAC: pl.MAC}); err != nil {
		return att, err
	}
	return att, nil
}

// existingPair finds the pair an earlier ADD of this attachment made: the
// host veth's alias names it, and its peer is args.IfName in the pod's
// namespace, already holding podIP.
func existingPair(host, podH *netlinkx.Handle, conf *NetConf, args *skel.CmdArgs, hostName string, podIP netip.Addr) (hl, pl netlinkx.Link, ok bool) {
	alias, ok := vethAlias(conf.Name, args.ContainerID, args.IfName)
	if !ok {
		return hl, pl, false
	}
	hl, err := host.LinkByName(hostName)
	if err != nil || hl.Alias != alias {
		return hl, pl, false
	}
	pl, err = podH.LinkByName(args.IfName)
	if err != nil || pl.Peer != hl.Index || hl.Peer != pl.Index {
		return hl, pl, false
	}
	addrs, err := podH.AddrList(pl.Index)
	return hl, pl, err == nil && slices.Contains(addrs, netip.PrefixFrom(podIP, 32))
}

// newPair replaces whatever has the host-side name (a leftover of the same
// pod) with a new veth pair whose peer is args.IfName in the pod's
// namespace. On failure nothing of the new pair is left.
func newPair(host, podH *netlinkx.Handle, conf *NetConf, args *skel.CmdArgs, podNS *netns.NS, hostName string) (hl, pl netlinkx.Link, err error) {
	if old, lerr := host.LinkByName(hostName); lerr == nil {
		if err = host.LinkDel(old.Index); err != nil && !errors.Is(err, netlinkx.ErrNotFound) {
			return hl, pl, err
		}
	}
	if err = host.AddVeth(netlinkx.VethSpec{Name: hostName, MAC: hostMAC, MTU: conf.mtu(), PeerName: args.IfName, PeerNsFd: podNS.Fd()}); err != nil {
		return hl, pl, err
	}
	defer func() {
		if err != nil {
			detach(nil, "", hostName) // the host end takes its peer with it
		}
	}()
	if hl, err = host.LinkByName(hostName); err != nil {
		return hl, pl, err
	}
	if alias, ok := vethAlias(conf.Name, args.ContainerID, args.IfName); ok {
		if err = host.LinkSetAlias(hl.Index, alias); err != nil {
			return hl, pl, err
		}
	}
	if hl.MAC.String() != hostMAC.String() { // some kernels ignore the requested address
		if err = host.LinkSetMAC(hl.Index, hostMAC); err != nil {
			return hl, pl, err
		}
	}
	pl, err = podH.LinkByName(args.IfName)
	return hl, pl, err
}

// hostRoute adds the pod's /32 on the host veth; one already there (the
// agent may have been first, or an earlier ADD) is fine if it points at the
// veth.
func hostRoute(host *netlinkx.Handle, conf *NetConf, hl netlinkx.Link, hostName string, podIP netip.Addr) error {
	hr := netlinkx.Route{Dst: netip.PrefixFrom(podIP, 32), Protocol: conf.RouteProtocol, Type: netlinkx.RouteUnicast,
		Scope: netlinkx.ScopeLink, Path: netlinkx.NextHop{LinkIndex: hl.Index}}
	err := host.RouteAdd(&hr)
	if err == nil || !errors.Is(err, unix.EEXIST) {
		return err
	}
	rs, lerr := host.RouteList(netlinkx.RouteFilter{LinkIndex: hl.Index})
	if lerr != nil {
		return lerr
	}
	if !slices.ContainsFunc(rs, func(r netlinkx.Route) bool { return r.Dst == hr.Dst }) {
		return fmt.Errorf("route %s already exists for an interface other than %s: %w", hr.Dst, hostName, err)
	}
	return nil
}

func podRoutes(index int, gw netip.Addr) []netlinkx.Route {
	return []netlinkx.Route{
		{Dst: netip.PrefixFrom(gw, 32), Protocol: netlinkx.ProtoBoot, Type: netlinkx.RouteUnicast, Scope: netlinkx.ScopeLink, Path: netlinkx.NextHop{LinkIndex: index}},
		{Dst: netip.MustParsePrefix("0.0.0.0/0"), Protocol: netlinkx.ProtoBoot, Type: netlinkx.RouteUnicast, Path: netlinkx.NextHop{LinkIndex: index, Gw: gw}},
	}
}

func hostSysctls(iface string) error {
	for _, kv := range [][2]string{
		{"net/ipv4/conf/" + iface + "/proxy_arp", "1"},
		{"net/ipv4/neigh/" + iface + "/proxy_delay", "0"},
		{"net/ipv4/conf/" + iface + "/forwarding", "1"},
	} {
		if err := setSysctl(kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

// detach removes the pair (best effort): deleting either end deletes both.
// podNS nil: only the host end is looked for (ADD's rollback: a pod-side
// interface of that name may not be ours).
func detach(podNS *netns.NS, ifName, hostName string) {
	if host, err := netlinkx.Open(-1); err == nil {
		if l, err := host.LinkByName(hostName); err == nil {
			_ = host.LinkDel(l.Index)
		}
		host.Close()
	}
	if podNS == nil {
		return
	}
	if h, err := netlinkx.Open(podNS.Fd()); err == nil {
		if l, err := h.LinkByName(ifName); err == nil {
			_ = h.LinkDel(l.Index)
		}
		h.Close()
	}
}
