package attach

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	"go.uber.org/zap"

	"github.com/gingham-net/gingham/cni/netconf"
	"github.com/gingham-net/gingham/internal/logging"
	"github.com/gingham-net/gingham/internal/netlinkx"
)

// aliasPrefix starts the alias ADD gives a host veth:
// "gingham/<network>/<container ID>/<ifname>".
const aliasPrefix = "gingham/"

// maxAlias is the longest alias the kernel keeps (IFALIASZ - 1).
const maxAlias = 255

// vethAlias is the alias recording which attachment a host veth belongs to.
// ok is false when it would not fit: such a veth carries no alias and GC
// never removes it (a truncated alias could name the wrong attachment).
func vethAlias(network, containerID, ifName string) (alias string, ok bool) {
	a := aliasPrefix + network + "/" + containerID + "/" + ifName
	if len(a) > maxAlias || containerID == "" || ifName == "" || strings.Contains(containerID, "/") {
		return "", false
	}
	return a, true
}

// parseVethAlias reads an alias written by vethAlias. Container IDs and
// interface names hold no "/", so they are split off from the right and
// the network name may contain anything.
func parseVethAlias(alias string) (network string, att types.GCAttachment, ok bool) {
	rest, found := strings.CutPrefix(alias, aliasPrefix)
	if !found {
		return "", types.GCAttachment{}, false
	}
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return "", types.GCAttachment{}, false
	}
	rest, att.IfName = rest[:i], rest[i+1:]
	if i = strings.LastIndexByte(rest, '/'); i < 0 {
		return "", types.GCAttachment{}, false
	}
	network, att.ContainerID = rest[:i], rest[i+1:]
	if network == "" || att.ContainerID == "" || att.IfName == "" {
		return "", types.GCAttachment{}, false
	}
	return network, att, true
}

// staleVeths picks, from the host's links, the veths of network (their name
// starts with prefix and their alias names network) whose attachment is not
// in valid. Everything else (other networks, veths without our alias, other
// kinds of link) is left alone.
func staleVeths(links []netlinkx.Link, network, prefix string, valid []types.GCAttachment) []netlinkx.Link {
	keep := make(map[types.GCAttachment]bool, len(valid))
	for _, a := range valid {
		keep[a] = true
	}
	var out []netlinkx.Link
	for _, l := range links {
		if l.Kind != "veth" || !strings.HasPrefix(l.Name, prefix) {
			continue
		}
		net, att, ok := parseVethAlias(l.Alias)
		if !ok || net != network || keep[att] {
			continue
		}
		out = append(out, l)
	}
	return out
}

// errNoValidList: a GC must say which attachments are valid; without the
// list everything would look stale.
var errNoValidList = errors.New("GC without cni.dev/valid-attachments: refusing to guess which attachments are valid")

// cmdGC (CNI 1.1) hands the valid attachments to the IPAM plugin, which
// releases the addresses of the others, and removes this network's host
// veths that belong to no valid attachment.
func cmdGC(r *request) error {
	if !netconf.HasKey(r.args.StdinData, "cni.dev/valid-attachments") {
		return types.NewError(types.ErrInvalidNetworkConfig, errNoValidList.Error(), "")
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var errs []error
	if err := invoke.DelegateGC(ctx, r.conf.IPAM.Type, r.args.StdinData, nil); err != nil {
		errs = append(errs, fmt.Errorf("ipam %s gc: %w", r.conf.IPAM.Type, err))
	}
	if err := removeStaleVeths(r); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func removeStaleVeths(r *request) error {
	host, err := netlinkx.Open(-1)
	if err != nil {
		return err
	}
	defer host.Close()
	links, err := host.LinkList()
	if err != nil {
		return fmt.Errorf("gc: %w", err)
	}
	var errs []error
	for _, l := range staleVeths(links, r.conf.Name, r.conf.InterfacePrefix, r.conf.ValidAttachments) {
		if err := host.LinkDel(l.Index); err != nil && !errors.Is(err, netlinkx.ErrNotFound) {
			errs = append(errs, fmt.Errorf("gc: remove stale veth %s: %w", l.Name, err))
			continue
		}
		r.log.Info("removed stale veth", zap.String(logging.KeyIface, l.Name), zap.String("attachment", l.Alias))
	}
	return errors.Join(errs...)
}
