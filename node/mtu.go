package node

import (
	"fmt"
	"net/netip"

	"go.uber.org/zap"

	"github.com/gingham-net/gingham/felix"
)

// mtuFile writes the pod MTU where the CNI plugin reads it, from the
// uplink's MTU (detected once, or GINGHAM_MTU) and the encapsulation.
type mtuFile struct {
	stateDir string
	override int // GINGHAM_MTU; 0: none
	detected int
	uplink   string
	log      *zap.Logger
}

var _ MTUFile = (*mtuFile)(nil)

// newMTUFile detects the uplink towards nodeIP; override (GINGHAM_MTU, 0:
// none) wins, and detection may only fail when it is set.
func newMTUFile(stateDir string, nodeIP netip.Addr, override int, log *zap.Logger) (*mtuFile, error) {
	detected, iface, err := felix.DetectHostMTU(nil, nodeIP)
	if err != nil && override == 0 {
		return nil, fmt.Errorf("detect host MTU (set GINGHAM_MTU): %w", err)
	}
	return &mtuFile{stateDir: stateDir, override: override, detected: detected, uplink: iface, log: log}, nil
}

// hostMTU is the uplink's MTU as tunl0 must fit it.
func (m *mtuFile) hostMTU() int {
	if m.override != 0 {
		return m.override
	}
	return m.detected
}

// Write records the pod MTU for the uplink with or without IPIP.
func (m *mtuFile) Write(ipip bool) error {
	mtu := felix.PodMTU(m.detected, m.override, ipip)
	if err := felix.WriteMTU(m.stateDir, mtu); err != nil {
		return fmt.Errorf("write pod MTU to %s: %w", m.stateDir, err)
	}
	m.log.Info("pod MTU", zap.Int("mtu", mtu), zap.String("uplink", m.uplink), zap.Int("uplinkMTU", m.detected), zap.Bool("ipip", ipip))
	return nil
}
