package autodetect

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
)

// Iface is one host interface with its IPv4 addresses (with prefix
// lengths), as the kernel lists them.
type Iface struct {
	Index int
	Name  string
	Up    bool
	Addrs []netip.Prefix
}

// Result is a detected address and the interface that holds it.
type Result struct {
	Prefix    netip.Prefix
	Interface string
}

// ErrNotFound: no address satisfies the method.
var ErrNotFound = errors.New("no matching address")

// Select applies an interface-scanning method (first-found, interface=,
// skip-interface=, cidr=) to ifaces: the first global unicast IPv4 address,
// interfaces taken from the highest index down.
func Select(m Method, ifaces []Iface) (Result, error) {
	switch m.Kind {
	case FirstFound, Interface, SkipInterface, CIDR:
	default:
		return Result{}, fmt.Errorf("method %s does not select among interfaces", m)
	}
	for _, ifc := range byIndexDescending(ifaces) {
		if !ifc.Up || !included(m, ifc.Name) {
			continue
		}
		for _, a := range ifc.Addrs {
			if usable(a.Addr()) && inCIDRs(m.CIDRs, a.Addr()) {
				return Result{Prefix: a, Interface: ifc.Name}, nil
			}
		}
	}
	return Result{}, fmt.Errorf("%s: no global IPv4 address on a matching interface that is up: %w", m, ErrNotFound)
}

// PrefixOf finds the interface holding addr and returns addr with that
// interface's prefix length (the subnet CrossSubnet compares against).
func PrefixOf(ifaces []Iface, addr netip.Addr) (Result, error) {
	for _, ifc := range byIndexDescending(ifaces) {
		for _, a := range ifc.Addrs {
			if a.Addr() == addr {
				return Result{Prefix: a, Interface: ifc.Name}, nil
			}
		}
	}
	return Result{}, fmt.Errorf("%s is on no interface of this host: %w", addr, ErrNotFound)
}

func byIndexDescending(ifaces []Iface) []Iface {
	out := slices.Clone(ifaces)
	slices.SortStableFunc(out, func(a, b Iface) int { return b.Index - a.Index })
	return out
}

func included(m Method, name string) bool {
	if len(m.Include) > 0 && !matchesAny(m.Include, name) {
		return false
	}
	return !matchesAny(m.Exclude, name)
}

func matchesAny(res []*regexp.Regexp, name string) bool {
	return slices.ContainsFunc(res, func(re *regexp.Regexp) bool { return re.MatchString(name) })
}

func usable(a netip.Addr) bool { return a.Is4() && a.IsGlobalUnicast() }

func inCIDRs(cidrs []netip.Prefix, a netip.Addr) bool {
	return len(cidrs) == 0 || slices.ContainsFunc(cidrs, func(p netip.Prefix) bool { return p.Contains(a) })
}
