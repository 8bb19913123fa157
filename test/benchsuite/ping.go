package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gingham-net/gingham/test/labnet"
)

// pingDF is `ping -M do -c 1 -s payload dst` from inside namespace ns
// (iputils-ping is not among the tools): one ICMP echo request with the
// don't-fragment bit set. It reports whether the echo reply came back
// within timeout; a packet too big for the local route (EMSGSIZE, ping's
// "message too long") or a reply of "fragmentation needed" is a failure,
// not an error.
func pingDF(ns string, dst netip.Addr, payload int, seq uint16, timeout time.Duration) (bool, error) {
	fd := -1
	err := labnet.InNetNS(ns, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("ping socket in %s: %w", ns, err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO); err != nil {
		return false, fmt.Errorf("ping: set DF: %w", err)
	}
	tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return false, fmt.Errorf("ping: set timeout: %w", err)
	}
	id := uint16(os.Getpid())
	msg := make([]byte, 8+payload)
	msg[0] = 8 // echo request
	binary.BigEndian.PutUint16(msg[4:], id)
	binary.BigEndian.PutUint16(msg[6:], seq)
	for i := 8; i < len(msg); i++ {
		msg[i] = byte(i)
	}
	binary.BigEndian.PutUint16(msg[2:], labnet.InternetChecksum(msg))
	err = unix.Sendto(fd, msg, 0, &unix.SockaddrInet4{Addr: dst.As4()})
	if errors.Is(err, unix.EMSGSIZE) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("ping %s: %w", dst, err)
	}
	buf := make([]byte, 65536)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return false, nil // e.g. EMSGSIZE reported back by an ICMP error
		}
		if n < 20 {
			continue
		}
		ihl := int(buf[0]&0x0f) * 4
		if n < ihl+8 {
			continue
		}
		icmp := buf[ihl:n]
		if icmp[0] == 0 && binary.BigEndian.Uint16(icmp[4:]) == id && binary.BigEndian.Uint16(icmp[6:]) == seq {
			return true, nil
		}
	}
	return false, nil
}
