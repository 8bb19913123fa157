package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gingham-net/gingham/internal/netns"
)

// Ports of the pod servers.
const (
	tcpPort  = 7000 // counts the bytes received, answers "<peer> <bytes>"
	echoPort = 7001 // UDP: echoes each datagram
	sinkPort = 7002 // UDP: counts datagrams (forged IPIP target)
)

// packet is what the capture keeps of one IPv4 frame on the underlay.
type packet struct {
	proto        uint8
	src, dst     netip.Addr
	totLen       int
	frag         bool // MF set or a fragment offset
	innerProto   uint8
	inSrc, inDst netip.Addr
}

// capture counts IPv4 frames on one interface through a packet socket (the
// VM has no tcpdump).
type capture struct {
	fd   int
	stop atomic.Bool
	mu   sync.Mutex
	pkts []packet
}

func startCapture(ns *netns.NS, dev string) (*capture, error) {
	c := &capture{}
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		proto := int(htons(unix.ETH_P_ALL))
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return fmt.Errorf("bind packet socket: %w", err)
		}
		tv := unix.Timeval{Usec: 100_000}
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			unix.Close(fd)
			return err
		}
		c.fd = fd
		return nil
	})
	if err != nil {
		return nil, err
	}
	go c.loop()
	return c, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (c *capture) loop() {
	buf := make([]byte, 65600)
	for !c.stop.Load() {
		n, _, err := unix.Recvfrom(c.fd, buf, 0)
		if err != nil || n < 14+20 || binary.BigEndian.Uint16(buf[12:14]) != 0x0800 {
			continue
		}
		p, ok := parseIPv4(buf[14:n])
		if !ok {
			continue
		}
		c.mu.Lock()
		c.pkts = append(c.pkts, p)
		c.mu.Unlock()
	}
}

func parseIPv4(b []byte) (packet, bool) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return packet{}, false
	}
	ihl := int(b[0]&0xf) * 4
	fo := binary.BigEndian.Uint16(b[6:8])
	p := packet{
		proto: b[9], totLen: int(binary.BigEndian.Uint16(b[2:4])), frag: fo&0x2000 != 0 || fo&0x1fff != 0,
		src: netip.AddrFrom4([4]byte(b[12:16])), dst: netip.AddrFrom4([4]byte(b[16:20])),
	}
	if p.proto == 4 && len(b) >= ihl+20 {
		in := b[ihl:]
		p.innerProto = in[9]
		p.inSrc, p.inDst = netip.AddrFrom4([4]byte(in[12:16])), netip.AddrFrom4([4]byte(in[16:20]))
	}
	return p, true
}

func (c *capture) reset() {
	c.mu.Lock()
	c.pkts = c.pkts[:0]
	c.mu.Unlock()
}

// flowStats summarises the captured packets between a and b (either way).
type flowStats struct {
	encap, plain, frags int
	maxEncapUDP         int // largest outer packet carrying inner UDP
}

func (s flowStats) String() string {
	return fmt.Sprintf("underlay: %d IPIP (proto 4), %d plain, %d fragments", s.encap, s.plain, s.frags)
}

func (c *capture) stats(a, b netip.Addr) flowStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	between := func(x, y netip.Addr) bool { return (x == a && y == b) || (x == b && y == a) }
	var s flowStats
	for _, p := range c.pkts {
		switch {
		case p.proto == 4 && between(p.inSrc, p.inDst):
			s.encap++
			if p.innerProto == unix.IPPROTO_UDP {
				s.maxEncapUDP = max(s.maxEncapUDP, p.totLen)
			}
		case between(p.src, p.dst):
			s.plain++
		default:
			continue
		}
		if p.frag {
			s.frags++
		}
	}
	return s
}

// servePod starts the pod's TCP, UDP echo and UDP sink servers; sink counts
// the datagrams the sink received.
func servePod(p *pod) (sink *atomic.Int64, err error) {
	sink = &atomic.Int64{}
	err = p.ns.Do(func() error {
		ln, err := net.Listen("tcp4", fmt.Sprintf(":%d", tcpPort))
		if err != nil {
			return err
		}
		echo, err := net.ListenPacket("udp4", fmt.Sprintf(":%d", echoPort))
		if err != nil {
			return err
		}
		sk, err := net.ListenPacket("udp4", fmt.Sprintf(":%d", sinkPort))
		if err != nil {
			return err
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					n, _ := io.Copy(io.Discard, c)
					fmt.Fprintf(c, "%s %d\n", c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap(), n)
				}()
			}
		}()
		go func() {
			buf := make([]byte, 65536)
			for {
				n, from, err := echo.ReadFrom(buf)
				if err != nil {
					return
				}
				_, _ = echo.WriteTo(buf[:n], from)
			}
		}()
		go func() {
			buf := make([]byte, 2048)
			for {
				if _, _, err := sk.ReadFrom(buf); err != nil {
					return
				}
				sink.Add(1)
			}
		}()
		return nil
	})
	return sink, err
}

// ping sends one ICMP echo with busybox ping from ns.
func ping(ns *netns.NS, dst netip.Addr) error {
	return ns.Do(func() error {
		// The child is forked from this locked thread: it inherits ns.
		out, err := exec.Command("/bin/busybox", "ping", "-c", "1", "-W", "3", dst.String()).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ping %s: %w: %s", dst, err, strings.TrimSpace(string(out)))
		}
		return nil
	})
}

// tcpTransfer sends size bytes from ns to dst's TCP server; it returns the
// source address the server saw and the connection's MSS.
func tcpTransfer(ns *netns.NS, dst netip.Addr, size int) (peer netip.Addr, mss int, err error) {
	err = ns.Do(func() error {
		c, err := net.DialTimeout("tcp4", netip.AddrPortFrom(dst, tcpPort).String(), 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		tc := c.(*net.TCPConn)
		rc, err := tc.SyscallConn()
		if err != nil {
			return err
		}
		_ = rc.Control(func(fd uintptr) { mss, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_MAXSEG) })
		if _, err := tc.Write(make([]byte, size)); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		if err := tc.CloseWrite(); err != nil {
			return err
		}
		line, err := bufio.NewReader(tc).ReadString('\n')
		if err != nil {
			return fmt.Errorf("read answer: %w", err)
		}
		var who string
		var n int
		if _, err := fmt.Sscanf(line, "%s %d", &who, &n); err != nil {
			return fmt.Errorf("answer %q: %w", line, err)
		}
		if n != size {
			return fmt.Errorf("server got %d of %d bytes", n, size)
		}
		peer, err = netip.ParseAddr(who)
		return err
	})
	return peer, mss, err
}

// udpDF sends one datagram of payload bytes with DF set (IP_PMTUDISC_DO)
// from ns to dst's echo server and waits for the echo. A datagram larger
// than the path MTU fails locally with EMSGSIZE.
func udpDF(ns *netns.NS, dst netip.Addr, payload int) error {
	return ns.Do(func() error {
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, echoPort)))
		if err != nil {
			return err
		}
		defer c.Close()
		rc, err := c.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO)
		}); err != nil || serr != nil {
			return errors.Join(err, serr)
		}
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.Write(make([]byte, payload)); err != nil {
			return err
		}
		buf := make([]byte, 65536)
		n, err := c.Read(buf)
		if err != nil {
			return fmt.Errorf("no echo: %w", err)
		}
		if n != payload {
			return fmt.Errorf("echo of %d bytes, want %d", n, payload)
		}
		return nil
	})
}

// forgeIPIP sends, from ns, an IPIP packet to outerDst whose inner packet
// is a UDP datagram from innerSrc to innerDst's sink port.
func forgeIPIP(ns *netns.NS, outerDst, innerSrc, innerDst netip.Addr) error {
	udp := make([]byte, 8+16)
	binary.BigEndian.PutUint16(udp[0:], 40000)
	binary.BigEndian.PutUint16(udp[2:], sinkPort)
	binary.BigEndian.PutUint16(udp[4:], uint16(len(udp)))
	copy(udp[8:], "forged by a non-node")
	ip := make([]byte, 20)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(udp)))
	ip[8], ip[9] = 64, unix.IPPROTO_UDP
	s4, d4 := innerSrc.As4(), innerDst.As4()
	copy(ip[12:], s4[:])
	copy(ip[16:], d4[:])
	binary.BigEndian.PutUint16(ip[10:], checksum(ip))
	return ns.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_IPIP)
		if err != nil {
			return fmt.Errorf("raw ipip socket: %w", err)
		}
		defer unix.Close(fd)
		return unix.Sendto(fd, append(ip, udp...), 0, &unix.SockaddrInet4{Addr: outerDst.As4()})
	})
}

func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
