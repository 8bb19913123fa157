package gobgp

import (
	"context"
	"errors"
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// ErrNoTCPMD5 means the kernel cannot sign BGP sessions (no
// CONFIG_TCP_MD5SIG): peers with passwords would never establish.
var ErrNoTCPMD5 = errors.New("kernel does not support TCP-MD5 signatures")

// ProbeTCPMD5 checks at start-up that the kernel accepts a TCP_MD5SIG key
// on a throwaway loopback listener. GoBGP itself only logs a warning when
// setting a key fails, so call this before configuring password peers and
// report its error (it wraps ErrNoTCPMD5 on a kernel without support).
func ProbeTCPMD5() error {
	// Go 1.24+ listens with MPTCP by default, which has no TCP_MD5SIG;
	// GoBGP's own listener turns MPTCP off, and so must the probe.
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("probe tcp-md5: listen: %w", err)
	}
	defer ln.Close()
	raw, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		return fmt.Errorf("probe tcp-md5: %w", err)
	}
	sig := unix.TCPMD5Sig{Keylen: 5}
	copy(sig.Key[:], "probe")
	// AF_INET, address 127.0.0.2 (any address works; it is never used).
	sig.Addr.Family = unix.AF_INET
	addr := [4]byte{127, 0, 0, 2}
	copy(sig.Addr.Data[2:6], addr[:])
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptTCPMD5Sig(int(fd), unix.IPPROTO_TCP, unix.TCP_MD5SIG, &sig)
	}); err != nil {
		return fmt.Errorf("probe tcp-md5: %w", err)
	}
	if serr != nil {
		if errors.Is(serr, unix.ENOPROTOOPT) || errors.Is(serr, unix.EINVAL) {
			return fmt.Errorf("probe tcp-md5: %w: %w", ErrNoTCPMD5, serr)
		}
		return fmt.Errorf("probe tcp-md5: setsockopt: %w", serr)
	}
	return nil
}
