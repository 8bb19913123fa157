package felix

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gingham-net/gingham/internal/netlinkx"
	"github.com/gingham-net/gingham/internal/netns"
)

// Per-workload-interface sysctls (Calico's L3 attachment): the host answers
// the pod's ARP for 169.254.1.1 at once and forwards its traffic.
func ifaceSysctls(iface string) [][2]string {
	return [][2]string{
		{"net/ipv4/conf/" + iface + "/proxy_arp", "1"},
		{"net/ipv4/neigh/" + iface + "/proxy_delay", "0"},
		{"net/ipv4/conf/" + iface + "/forwarding", "1"},
	}
}

// SetSysctl writes value under /proc/sys when it differs; it reports whether
// it wrote. It acts on the calling thread's namespace.
func SetSysctl(key, value string) (bool, error) {
	p := filepath.Join("/proc/sys", key)
	old, err := os.ReadFile(p)
	if err != nil {
		return false, fmt.Errorf("read sysctl %s: %w", key, err)
	}
	if string(bytes.TrimSpace(old)) == value {
		return false, nil
	}
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return false, fmt.Errorf("write sysctl %s=%s: %w", key, value, err)
	}
	return true, nil
}

func (d *Dataplane) inNS(f func() error) error {
	if d.ns == nil {
		return f()
	}
	return d.ns.Do(f)
}

// programEndpoints writes the permanent neighbour entries and the sysctls of
// every local endpoint whose interface exists; on a full resync everything
// is reasserted, otherwise only new interfaces are configured.
func (d *Dataplane) programEndpoints(st *state, h *netlinkx.Handle) error {
	links, err := h.LinkList()
	if err != nil {
		return fmt.Errorf("program endpoints: %w", err)
	}
	byName := make(map[string]netlinkx.Link, len(links))
	present := make(map[int]bool, len(links))
	for _, l := range links {
		byName[l.Name] = l
		present[l.Index] = true
	}
	for idx := range st.configured {
		if !present[idx] {
			delete(st.configured, idx)
		}
	}
	var errs []error
	var todo []string
	for _, ep := range st.eps {
		l, ok := byName[ep.Iface]
		if !ok {
			continue
		}
		if len(ep.MAC) == 6 && ep.IP.Is4() && ep.LinkIndex == l.Index {
			if err := h.NeighSetPermanent(netlinkx.Neigh{LinkIndex: l.Index, IP: ep.IP, MAC: ep.MAC}); err != nil {
				errs = append(errs, err)
			}
		}
		if st.full || !st.configured[l.Index] {
			todo = append(todo, ep.Iface)
			st.configured[l.Index] = true
		}
	}
	if len(todo) > 0 || st.full {
		err := d.inNS(func() error {
			var errs []error
			if st.full {
				if _, err := SetSysctl("net/ipv4/ip_forward", "1"); err != nil {
					errs = append(errs, err)
				}
			}
			for _, iface := range todo {
				for _, kv := range ifaceSysctls(iface) {
					if _, err := SetSysctl(kv[0], kv[1]); err != nil && !errors.Is(err, os.ErrNotExist) {
						errs = append(errs, err)
					}
				}
			}
			return errors.Join(errs...)
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// DiscoverEndpoints reads the local endpoints back from the kernel: every
// link named with prefix, each /32 scope-link route on it, and the MAC from
// its permanent neighbour entry, with the link's index (see Endpoint). A
// restarted agent uses it to know its pods before the API server answers.
// ns nil means the caller's namespace.
func DiscoverEndpoints(ns *netns.NS, prefix string) ([]Endpoint, error) {
	fd := -1
	if ns != nil {
		fd = ns.Fd()
	}
	h, err := netlinkx.Open(fd)
	if err != nil {
		return nil, fmt.Errorf("discover endpoints: %w", err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("discover endpoints: %w", err)
	}
	var out []Endpoint
	for _, l := range links {
		if !strings.HasPrefix(l.Name, prefix) {
			continue
		}
		routes, err := h.RouteList(netlinkx.RouteFilter{LinkIndex: l.Index})
		if err != nil {
			return nil, fmt.Errorf("discover endpoints on %s: %w", l.Name, err)
		}
		neighs, err := h.NeighList(l.Index)
		if err != nil {
			return nil, fmt.Errorf("discover endpoints on %s: %w", l.Name, err)
		}
		for _, r := range routes {
			if r.Dst.Bits() != 32 || r.Type != netlinkx.RouteUnicast || r.Path.Gw.IsValid() {
				continue
			}
			ep := Endpoint{IP: r.Dst.Addr(), Iface: l.Name, LinkIndex: l.Index}
			for _, n := range neighs {
				if n.IP == ep.IP && n.Permanent {
					ep.MAC = n.MAC
				}
			}
			out = append(out, ep)
		}
	}
	return out, nil
}
