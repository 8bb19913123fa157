package attach

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"github.com/containernetworking/cni/pkg/invoke"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/gingham-net/gingham/internal/netlinkx"
	"github.com/gingham-net/gingham/internal/netns"
)

func setSysctl(key, value string) error {
	if err := os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0o644); err != nil {
		return fmt.Errorf("write sysctl %s=%s: %w", key, value, err)
	}
	return nil
}

// cmdDel releases the address and removes the veth; everything missing is
// fine, so a repeated DEL succeeds.
func cmdDel(r *request) error {
	args, conf := r.args, r.conf
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var errs []error
	if err := invoke.DelegateDel(ctx, conf.IPAM.Type, args.StdinData, nil); err != nil {
		errs = append(errs, fmt.Errorf("ipam %s del: %w", conf.IPAM.Type, err))
	}
	hostName := hostVeth(conf, r.namespace, r.pod, args.ContainerID)
	var podNS *netns.NS
	if args.Netns != "" {
		if ns, err := netns.Open(args.Netns); err == nil {
			podNS = ns
			defer ns.Close()
		}
	}
	detach(podNS, args.IfName, hostName)
	return errors.Join(errs...)
}

// cmdCheck verifies the pod's interface, address and routes, and the host
// veth and /32, against the previous result.
func cmdCheck(r *request) error {
	args, conf := r.args, r.conf
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := invoke.DelegateCheck(ctx, conf.IPAM.Type, args.StdinData, nil); err != nil {
		return fmt.Errorf("ipam %s check: %w", conf.IPAM.Type, err)
	}
	if conf.RawPrevResult == nil {
		return errors.New("check: no prevResult in the network configuration")
	}
	if err := version.ParsePrevResult(&conf.PluginConf); err != nil {
		return fmt.Errorf("check: parse prevResult: %w", err)
	}
	prev, err := current.NewResultFromResult(conf.PrevResult)
	if err != nil {
		return fmt.Errorf("check: parse prevResult: %w", err)
	}
	podIP, err := singleIPv4(prev)
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	podNS, err := netns.Open(args.Netns)
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	defer podNS.Close()
	ph, err := netlinkx.Open(podNS.Fd())
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	defer ph.Close()
	pl, err := ph.LinkByName(args.IfName)
	if err != nil {
		return fmt.Errorf("check: pod interface: %w", err)
	}
	addrs, err := ph.AddrList(pl.Index)
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	if !slices.Contains(addrs, netip.PrefixFrom(podIP, 32)) {
		return fmt.Errorf("check: %s lacks %s/32 (has %v)", args.IfName, podIP, addrs)
	}
	routes, err := ph.RouteList(netlinkx.RouteFilter{LinkIndex: pl.Index})
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	for _, want := range podRoutes(pl.Index, netip.MustParseAddr(GatewayIP)) {
		if !slices.ContainsFunc(routes, func(r netlinkx.Route) bool { return r.Dst == want.Dst && r.Path == want.Path }) {
			return fmt.Errorf("check: pod route %s missing", want.Dst)
		}
	}
	host, err := netlinkx.Open(-1)
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	defer host.Close()
	hostName := hostVeth(conf, r.namespace, r.pod, args.ContainerID)
	hl, err := host.LinkByName(hostName)
	if err != nil {
		return fmt.Errorf("check: host interface: %w", err)
	}
	hr, err := host.RouteList(netlinkx.RouteFilter{LinkIndex: hl.Index})
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	if !slices.ContainsFunc(hr, func(r netlinkx.Route) bool { return r.Dst == netip.PrefixFrom(podIP, 32) }) {
		return fmt.Errorf("check: host route %s/32 dev %s missing", podIP, hostName)
	}
	return nil
}
