package felix

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"

	"github.com/gingham-net/gingham/internal/netlinkx"
	"github.com/gingham-net/gingham/internal/netns"
)

// Encapsulation overheads in bytes.
const (
	IPIPOverhead = 20
	// FallbackMTU is used when no uplink can be found.
	FallbackMTU = 1460
	// MTUFile is the file under the state directory holding the pod MTU as
	// a decimal number; the CNI plugin reads it when its conf says mtu 0.
	MTUFile = "mtu"
)

// DetectHostMTU finds the uplink and returns its MTU and name: the interface
// holding nodeIP when it is valid, else the interface of the default route.
func DetectHostMTU(ns *netns.NS, nodeIP netip.Addr) (int, string, error) {
	fd := -1
	if ns != nil {
		fd = ns.Fd()
	}
	h, err := netlinkx.Open(fd)
	if err != nil {
		return 0, "", fmt.Errorf("detect host MTU: %w", err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return 0, "", fmt.Errorf("detect host MTU: %w", err)
	}
	if nodeIP.IsValid() {
		for _, l := range links {
			addrs, err := h.AddrList(l.Index)
			if err != nil {
				return 0, "", fmt.Errorf("detect host MTU: %w", err)
			}
			for _, a := range addrs {
				if a.Addr() == nodeIP {
					return l.MTU, l.Name, nil
				}
			}
		}
	}
	routes, err := h.RouteList(netlinkx.RouteFilter{})
	if err != nil {
		return 0, "", fmt.Errorf("detect host MTU: %w", err)
	}
	for _, r := range routes {
		if r.Dst.Bits() != 0 || r.Path.LinkIndex == 0 {
			continue
		}
		for _, l := range links {
			if l.Index == r.Path.LinkIndex {
				return l.MTU, l.Name, nil
			}
		}
	}
	return 0, "", errors.New("detect host MTU: no interface holds the node IP and there is no default route")
}

// PodMTU is the MTU of pod interfaces: the host MTU (override when non-zero,
// else detected) minus the overhead of the encapsulation in use.
func PodMTU(detected, override int, ipip bool) int {
	host := detected
	if override > 0 {
		host = override
	}
	if host <= 0 {
		host = FallbackMTU
	}
	if ipip {
		host -= IPIPOverhead
	}
	return host
}

// WriteMTU atomically writes the pod MTU to dir/mtu.
func WriteMTU(dir string, mtu int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write MTU file: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".mtu-*")
	if err != nil {
		return fmt.Errorf("write MTU file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(strconv.Itoa(mtu) + "\n"); err != nil {
		tmp.Close()
		return fmt.Errorf("write MTU file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write MTU file: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, MTUFile)); err != nil {
		return fmt.Errorf("write MTU file: %w", err)
	}
	return nil
}
