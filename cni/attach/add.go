package attach

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
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

	ipamRes, err := invoke.DelegateAdd(ctx, conf.IPAM.Type, args.StdinData, nil)
	if err != nil {
		return fmt.Errorf("ipam %s add: %w", conf.IPAM.Type, err)
	}
	// From here on, any failure gives the address back. err is the named
	// result: every return below assigns it, none shadows it.
	defer func() {
		if err != nil {
			if derr := invoke.DelegateDel(ctx, conf.IPAM.Type, args.StdinData, nil); derr != nil {
				err = errors.Join(err, fmt.Errorf("release address after failed add: %w", derr))
			}
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
	podMAC, err := attach(conf, args, hostName, podIP)
	if err != nil {
		detach(args.Netns, args.IfName, hostName)
		return err
	}
	r.log.Debug("attached", zap.String(logging.KeyIface, hostName), zap.Stringer("podIP", podIP))
	if conf.Kubeconfig != "" && namespace != "" && pod != "" {
		if err = annotatePod(ctx, conf.Kubeconfig, namespace, pod, podIP, args.ContainerID); err != nil {
			detach(args.Netns, args.IfName, hostName)
			return err
		}
	}

	res.Interfaces = []*current.Interface{
		{Name: hostName, Mac: hostMAC.String()},
		{Name: args.IfName, Mac: podMAC.String(), Sandbox: args.Netns},
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

// attach creates and configures both ends; it returns the pod's MAC.
func attach(conf *NetConf, args *skel.CmdArgs, hostName string, podIP netip.Addr) (net.HardwareAddr, error) {
	podNS, err := netns.Open(args.Netns)
	if err != nil {
		return nil, err
	}
	defer podNS.Close()
	host, err := netlinkx.Open(-1)
	if err != nil {
		return nil, err
	}
	defer host.Close()
	podH, err := netlinkx.Open(podNS.Fd())
	if err != nil {
		return nil, err
	}
	defer podH.Close()

	// A leftover host veth of the same pod (a retried ADD) goes first.
	if old, err := host.LinkByName(hostName); err == nil {
		if err := host.LinkDel(old.Index); err != nil && !errors.Is(err, netlinkx.ErrNotFound) {
			return nil, err
		}
	}
	mtu := conf.mtu()
	if err := host.AddVeth(netlinkx.VethSpec{Name: hostName, MAC: hostMAC, MTU: mtu, PeerName: args.IfName, PeerNsFd: podNS.Fd()}); err != nil {
		return nil, err
	}
	hl, err := host.LinkByName(hostName)
	if err != nil {
		return nil, err
	}
	if alias, ok := vethAlias(conf.Name, args.ContainerID, args.IfName); ok {
		if err := host.LinkSetAlias(hl.Index, alias); err != nil {
			return nil, err
		}
	}
	if hl.MAC.String() != hostMAC.String() { // some kernels ignore the requested address
		if err := host.LinkSetMAC(hl.Index, hostMAC); err != nil {
			return nil, err
		}
	}
	if err := hostSysctls(hostName); err != nil {
		return nil, err
	}
	if err := host.LinkSetUp(hl.Index); err != nil {
		return nil, err
	}

	// Pod side: eth0 up with the /32 and the two routes via 169.254.1.1.
	pl, err := podH.LinkByName(args.IfName)
	if err != nil {
		return nil, err
	}
	if err := podH.LinkSetUp(pl.Index); err != nil {
		return nil, err
	}
	if err := podH.AddrAdd(pl.Index, netip.PrefixFrom(podIP, 32)); err != nil {
		return nil, err
	}
	gw := netip.MustParseAddr(GatewayIP)
	for _, r := range podRoutes(pl.Index, gw) {
		if err := podH.RouteAdd(&r); err != nil {
			return nil, fmt.Errorf("pod %s: %w", args.IfName, err)
		}
	}

	// Host side: the /32, tagged with our protocol, and the pod's MAC.
	hr := netlinkx.Route{Dst: netip.PrefixFrom(podIP, 32), Protocol: conf.RouteProtocol, Type: netlinkx.RouteUnicast,
		Scope: netlinkx.ScopeLink, Path: netlinkx.NextHop{LinkIndex: hl.Index}}
	if err := host.RouteAdd(&hr); err != nil {
		if !errors.Is(err, unix.EEXIST) {
			return nil, err
		}
		// The agent may have been first; fine if it points at our veth.
		rs, lerr := host.RouteList(netlinkx.RouteFilter{LinkIndex: hl.Index})
		if lerr != nil {
			return nil, lerr
		}
		found := false
		for _, r := range rs {
			found = found || r.Dst == hr.Dst
		}
		if !found {
			return nil, fmt.Errorf("route %s already exists for an interface other than %s: %w", hr.Dst, hostName, err)
		}
	}
	if err := host.NeighSetPermanent(netlinkx.Neigh{LinkIndex: hl.Index, IP: podIP, MAC: pl.MAC}); err != nil {
		return nil, err
	}
	return pl.MAC, nil
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
func detach(netnsPath, ifName, hostName string) {
	if host, err := netlinkx.Open(-1); err == nil {
		if l, err := host.LinkByName(hostName); err == nil {
			_ = host.LinkDel(l.Index)
		}
		host.Close()
	}
	if netnsPath == "" {
		return
	}
	if ns, err := netns.Open(netnsPath); err == nil {
		if h, err := netlinkx.Open(ns.Fd()); err == nil {
			if l, err := h.LinkByName(ifName); err == nil {
				_ = h.LinkDel(l.Index)
			}
			h.Close()
		}
		ns.Close()
	}
}
