package netlinkx

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func linkFrom(l netlink.Link) Link {
	a := l.Attrs()
	return Link{
		Index:  a.Index,
		Name:   a.Name,
		Kind:   l.Type(),
		MAC:    a.HardwareAddr,
		MTU:    a.MTU,
		Up:     a.Flags&net.FlagUp != 0,
		OperUp: a.OperState == netlink.OperUp || a.OperState == netlink.OperUnknown,
		Alias:  a.Alias,
		Peer:   a.ParentIndex,
	}
}

func notFound(what string, err error) error {
	var lnf netlink.LinkNotFoundError
	if errors.As(err, &lnf) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("%s: %w", what, errors.Join(ErrNotFound, err))
	}
	return fmt.Errorf("%s: %w", what, err)
}

// LinkList dumps all links.
func (h *Handle) LinkList() ([]Link, error) {
	var out []Link
	err := h.dump("links", func() { out = out[:0] }, func() error {
		ls, err := h.h.LinkList()
		for _, l := range ls {
			out = append(out, linkFrom(l))
		}
		return err
	})
	return out, err
}

// LinkByName finds one link; ErrNotFound when it does not exist.
func (h *Handle) LinkByName(name string) (Link, error) {
	l, err := h.h.LinkByName(name)
	if err != nil {
		return Link{}, notFound("find link "+name, err)
	}
	return linkFrom(l), nil
}

// LinkByIndex finds one link; ErrNotFound when it does not exist.
func (h *Handle) LinkByIndex(index int) (Link, error) {
	l, err := h.h.LinkByIndex(index)
	if err != nil {
		return Link{}, notFound(fmt.Sprintf("find link %d", index), err)
	}
	return linkFrom(l), nil
}

// VethSpec describes a veth pair created in the Handle's namespace whose peer
// is moved to another namespace at creation.
type VethSpec struct {
	Name     string
	MAC      net.HardwareAddr // of Name; nil lets the kernel choose
	MTU      int
	PeerName string
	PeerNsFd int // namespace of the peer
}

// AddVeth creates the pair described by s.
func (h *Handle) AddVeth(s VethSpec) error {
	v := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: s.Name, MTU: s.MTU, HardwareAddr: s.MAC},
		PeerName:      s.PeerName,
		PeerNamespace: netlink.NsFd(s.PeerNsFd),
	}
	if err := h.h.LinkAdd(v); err != nil {
		return fmt.Errorf("add veth %s: %w", s.Name, err)
	}
	return nil
}

// LinkSetUp brings a link up.
func (h *Handle) LinkSetUp(index int) error {
	if err := h.h.LinkSetUp(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: index}}); err != nil {
		return notFound(fmt.Sprintf("set link %d up", index), err)
	}
	return nil
}

// LinkSetMAC sets a link's hardware address.
func (h *Handle) LinkSetMAC(index int, mac net.HardwareAddr) error {
	if err := h.h.LinkSetHardwareAddr(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: index}}, mac); err != nil {
		return notFound(fmt.Sprintf("set link %d address", index), err)
	}
	return nil
}

// LinkSetAlias sets a link's alias (IFLA_IFALIAS).
func (h *Handle) LinkSetAlias(index int, alias string) error {
	if err := h.h.LinkSetAlias(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: index}}, alias); err != nil {
		return notFound(fmt.Sprintf("set link %d alias", index), err)
	}
	return nil
}

// LinkDel deletes a link; ErrNotFound when it is already gone.
func (h *Handle) LinkDel(index int) error {
	if err := h.h.LinkDel(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: index}}); err != nil {
		return notFound(fmt.Sprintf("delete link %d", index), err)
	}
	return nil
}

// AddrList lists the IPv4 addresses of a link (0: all links).
func (h *Handle) AddrList(index int) ([]netip.Prefix, error) {
	var link netlink.Link
	if index != 0 {
		link = &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: index}}
	}
	var out []netip.Prefix
	err := h.dump("addresses", func() { out = out[:0] }, func() error {
		as, err := h.h.AddrList(link, unix.AF_INET)
		for _, a := range as {
			ad, _ := netip.AddrFromSlice(a.IP)
			ones, _ := a.Mask.Size()
			out = append(out, netip.PrefixFrom(ad.Unmap(), ones))
		}
		return err
	})
	return out, err
}

// AddrAdd adds an IPv4 address to a link.
func (h *Handle) AddrAdd(index int, p netip.Prefix) error {
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}}
	if err := h.h.AddrAdd(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: index}}, a); err != nil {
		return fmt.Errorf("add address %s to link %d: %w", p, index, err)
	}
	return nil
}

// NeighList lists the IPv4 neighbours of a link (0: all links).
func (h *Handle) NeighList(index int) ([]Neigh, error) {
	var out []Neigh
	err := h.dump("neighbours", func() { out = out[:0] }, func() error {
		ns, err := h.h.NeighList(index, unix.AF_INET)
		for _, n := range ns {
			if n.IP == nil {
				continue
			}
			out = append(out, Neigh{LinkIndex: n.LinkIndex, IP: addr(n.IP), MAC: n.HardwareAddr, Permanent: n.State&netlink.NUD_PERMANENT != 0})
		}
		return err
	})
	return out, err
}

// NeighSetPermanent writes a permanent neighbour entry ip → mac on a link.
func (h *Handle) NeighSetPermanent(n Neigh) error {
	err := h.h.NeighSet(&netlink.Neigh{
		LinkIndex:    n.LinkIndex,
		Family:       unix.AF_INET,
		State:        netlink.NUD_PERMANENT,
		IP:           n.IP.AsSlice(),
		HardwareAddr: n.MAC,
	})
	if err != nil {
		return fmt.Errorf("set neighbour %s on link %d: %w", n.IP, n.LinkIndex, err)
	}
	return nil
}
