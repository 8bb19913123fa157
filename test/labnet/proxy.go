package labnet

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// APIAddr is where node namespaces reach the API server (through an
// APIProxy). envtest's serving certificate covers 127.0.0.1.
const APIAddr = "127.0.0.1:6443"

// APIProxy forwards TCP connections accepted inside a namespace to an
// address on the host's loopback.
type APIProxy struct {
	NS     string
	target string
	ln     net.Listener
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	paused bool // Pause: connections are reset, live and new
}

// StartAPIProxy listens on listen inside namespace ns (the socket is
// created there and stays there) and forwards every connection to target,
// dialled from the host namespace.
func StartAPIProxy(ns, listen, target string) (*APIProxy, error) {
	p := &APIProxy{NS: ns, target: target, conns: map[net.Conn]struct{}{}}
	err := InNetNS(ns, func() error {
		ln, err := net.Listen("tcp", listen)
		p.ln = ln
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("api proxy in %s: listen %s: %w", ns, listen, err)
	}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

func (p *APIProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		if p.isPaused() {
			reset(c)
			continue
		}
		p.wg.Add(1)
		go p.forward(c)
	}
}

func (p *APIProxy) isPaused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paused
}

// reset closes c with an RST (SO_LINGER 0), as a host that refuses.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// Pause cuts the namespace off the API server: every live connection is
// reset and new ones are accepted and reset at once (clients see
// "connection reset by peer") until Resume.
func (p *APIProxy) Pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = true
	for c := range p.conns {
		reset(c)
	}
}

// Resume forwards new connections again after Pause.
func (p *APIProxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = false
}

func (p *APIProxy) track(c net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		if p.closed || p.paused {
			return false
		}
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
	return true
}

func (p *APIProxy) forward(in net.Conn) {
	defer p.wg.Done()
	defer in.Close()
	if p.isPaused() {
		reset(in)
		return
	}
	out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	defer out.Close()
	if !p.track(in, true) {
		reset(in)
		return
	}
	defer p.track(in, false)
	if !p.track(out, true) {
		reset(in)
		return
	}
	defer p.track(out, false)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(out, in)
	go pipe(in, out)
	<-done
	<-done
}

// Close stops accepting, closes open connections and waits for the
// forwarding goroutines.
func (p *APIProxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("close api proxy in %s: %w", p.NS, err)
	}
	return nil
}

// APIProxy returns the API proxy of a node (StartAPIProxies).
func (l *Lab) APIProxy(node string) (*APIProxy, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.proxies {
		if p.NS == l.NS(node) {
			return p, true
		}
	}
	return nil, false
}

// APITarget returns host:port of the API server a rest.Config points at.
func APITarget(cfg *rest.Config) (string, error) {
	u, err := url.Parse(cfg.Host)
	if err != nil {
		return "", fmt.Errorf("parse API server URL %q: %w", cfg.Host, err)
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "443"), nil
	}
	return u.Host, nil
}

// RewriteKubeconfig copies the kubeconfig src to dst with every cluster's
// server set to server (credentials and CA unchanged).
func RewriteKubeconfig(src, dst, server string) error {
	cfg, err := clientcmd.LoadFromFile(src)
	if err != nil {
		return fmt.Errorf("rewrite kubeconfig: %w", err)
	}
	for _, c := range cfg.Clusters {
		c.Server = server
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("rewrite kubeconfig: %w", err)
	}
	if err := clientcmd.WriteToFile(*cfg, dst); err != nil {
		return fmt.Errorf("rewrite kubeconfig: %w", err)
	}
	return nil
}

// NodeKubeconfig is the kubeconfig agents and CNI plugins use inside node
// namespaces (server https://127.0.0.1:6443, through the proxies).
func (l *Lab) NodeKubeconfig() string { return filepath.Join(l.Spec.RunDir, "kubeconfig.node") }

// StartAPIProxies starts an APIProxy in every node namespace towards the
// API server of cfg and writes NodeKubeconfig from hostKubeconfig.
func (l *Lab) StartAPIProxies(cfg *rest.Config, hostKubeconfig string) error {
	target, err := APITarget(cfg)
	if err != nil {
		return err
	}
	if err := RewriteKubeconfig(hostKubeconfig, l.NodeKubeconfig(), "https://"+APIAddr); err != nil {
		return err
	}
	for _, n := range l.Spec.Nodes {
		p, err := StartAPIProxy(l.NS(n.Name), APIAddr, target)
		if err != nil {
			return err
		}
		l.mu.Lock()
		l.proxies = append(l.proxies, p)
		l.mu.Unlock()
	}
	return nil
}
