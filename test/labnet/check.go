package labnet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// EchoPort is the TCP port of the echo servers StartEcho runs in pods.
const EchoPort = 7777

// Ping sends ICMP echoes from namespace ns to dst (busybox ping; Debian's
// busybox-static is installed by make tools) and succeeds on the first
// reply, trying up to attempts times.
func Ping(ctx context.Context, ns string, dst netip.Addr, attempts int) error {
	var err error
	for i := 0; i < max(attempts, 1); i++ {
		if _, err = Run(ctx, ns, "busybox", "ping", "-c", "1", "-W", "1", dst.String()); err == nil {
			return nil
		}
	}
	return fmt.Errorf("ping %s from %s: no reply", dst, ns)
}

// Echo is a TCP echo server listening inside a namespace.
type Echo struct {
	NS   string
	Addr netip.AddrPort
	ln   net.Listener
	wg   sync.WaitGroup
}

// StartEcho listens on addr:port inside ns and answers every line with
// "<ns> <line>". Each connection is served by this process.
func StartEcho(ns string, addr netip.Addr, port uint16) (*Echo, error) {
	e := &Echo{NS: ns, Addr: netip.AddrPortFrom(addr, port)}
	if err := InNetNS(ns, func() error {
		ln, err := net.Listen("tcp", e.Addr.String())
		e.ln = ln
		return err
	}); err != nil {
		return nil, fmt.Errorf("echo server in %s: %w", ns, err)
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			c, err := e.ln.Accept()
			if err != nil {
				return
			}
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				line, err := bufio.NewReader(c).ReadString('\n')
				if err == nil {
					_, _ = io.WriteString(c, ns+" "+line)
				}
			}()
		}
	}()
	return e, nil
}

// Close stops the server and waits for its connections.
func (e *Echo) Close() error {
	err := e.ln.Close()
	e.wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("close echo server in %s: %w", e.NS, err)
	}
	return nil
}

// TCPCheck connects from namespace ns to an echo server at dst, sends a
// line and expects it back from wantNS (when not empty).
func TCPCheck(ctx context.Context, ns string, dst netip.AddrPort, wantNS string) error {
	var conn net.Conn
	err := InNetNS(ns, func() error {
		d := net.Dialer{Timeout: 2 * time.Second}
		c, err := d.DialContext(ctx, "tcp", dst.String())
		conn = c
		return err
	})
	if err != nil {
		return fmt.Errorf("tcp %s from %s: %w", dst, ns, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	msg := "hello from " + ns
	if _, err := io.WriteString(conn, msg+"\n"); err != nil {
		return fmt.Errorf("tcp %s from %s: write: %w", dst, ns, err)
	}
	got, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("tcp %s from %s: read: %w", dst, ns, err)
	}
	if want := msg + "\n"; !strings.HasSuffix(got, want) || (wantNS != "" && got != wantNS+" "+want) {
		return fmt.Errorf("tcp %s from %s: answered %q", dst, ns, got)
	}
	return nil
}

// Probe is the outcome of one source→destination pair of a Matrix.
type Probe struct {
	Src, Dst *Pod
	Ping     error
	TCP      error
}

// OK reports whether both checks passed.
func (p Probe) OK() bool { return p.Ping == nil && p.TCP == nil }

// Matrix is the all-pairs connectivity of a set of pods.
type Matrix struct {
	Pods   []*Pod
	Probes []Probe // row-major, Src != Dst
}

// Passed counts the pairs whose ping and TCP checks both passed.
func (m *Matrix) Passed() int {
	n := 0
	for _, p := range m.Probes {
		if p.OK() {
			n++
		}
	}
	return n
}

// Complete reports whether every pair passed.
func (m *Matrix) Complete() bool { return len(m.Probes) > 0 && m.Passed() == len(m.Probes) }

// Failures lists the failed pairs, one line each.
func (m *Matrix) Failures() []string {
	var out []string
	for _, p := range m.Probes {
		if !p.OK() {
			out = append(out, fmt.Sprintf("%s (%s) -> %s (%s): ping: %v; tcp: %v", p.Src.Name, p.Src.IP, p.Dst.Name, p.Dst.IP, p.Ping, p.TCP))
		}
	}
	return out
}

// String renders the matrix as a table: P = ping, T = TCP, "." = failed.
func (m *Matrix) String() string {
	var b strings.Builder
	w := 4
	for _, p := range m.Pods {
		w = max(w, len(p.Name))
	}
	fmt.Fprintf(&b, "%-*s", w+2, "from \\ to")
	for i := range m.Pods {
		fmt.Fprintf(&b, " %3s", "#"+strconv.Itoa(i+1))
	}
	b.WriteString("\n")
	k := 0
	for i, src := range m.Pods {
		fmt.Fprintf(&b, "%-*s", w+2, fmt.Sprintf("#%d %s", i+1, src.Name))
		for j := range m.Pods {
			if i == j {
				b.WriteString("   -")
				continue
			}
			p := m.Probes[k]
			k++
			cell := map[bool]string{true: "P", false: "."}[p.Ping == nil] + map[bool]string{true: "T", false: "."}[p.TCP == nil]
			fmt.Fprintf(&b, " %3s", cell)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "%d/%d pairs OK (%.0f %%)\n", m.Passed(), len(m.Probes), 100*float64(m.Passed())/float64(max(len(m.Probes), 1)))
	return b.String()
}

// CheckMatrix pings and connects (TCP) from every pod to every other pod,
// a few pairs at a time; progress, when not nil, is called after each
// pair. Echo servers are started in every pod for the duration.
func CheckMatrix(ctx context.Context, pods []*Pod, progress func(done, total int)) (*Matrix, error) {
	m := &Matrix{Pods: pods}
	for _, src := range pods {
		for _, dst := range pods {
			if src != dst {
				m.Probes = append(m.Probes, Probe{Src: src, Dst: dst})
			}
		}
	}
	var echos []*Echo
	defer func() {
		for _, e := range echos {
			_ = e.Close()
		}
	}()
	for _, p := range pods {
		e, err := StartEcho(p.NetNS, p.IP, EchoPort)
		if err != nil {
			return nil, err
		}
		echos = append(echos, e)
	}
	var mu sync.Mutex
	done := 0
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range m.Probes {
		wg.Add(1)
		sem <- struct{}{}
		go func(p *Probe) {
			defer wg.Done()
			defer func() { <-sem }()
			p.Ping = Ping(ctx, p.Src.NetNS, p.Dst.IP, 2)
			p.TCP = TCPCheck(ctx, p.Src.NetNS, netip.AddrPortFrom(p.Dst.IP, EchoPort), p.Dst.NetNS)
			mu.Lock()
			done++
			if progress != nil {
				progress(done, len(m.Probes))
			}
			mu.Unlock()
		}(&m.Probes[i])
	}
	wg.Wait()
	return m, nil
}

// InternetChecksum is the Internet checksum (RFC 1071) of b, as an ICMP
// echo request carries it.
func InternetChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}
