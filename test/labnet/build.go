package labnet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Lab is a built topology. Its methods are safe for concurrent use.
type Lab struct {
	Spec Spec

	mu      sync.Mutex
	daemons map[string]*Daemon // by Daemon.Name
	proxies []*APIProxy
}

// TestPrefix is a namespace prefix unique to this process ("ght<pid>-"),
// so CleanupStale can tell a crashed run's namespaces from a live one's.
func TestPrefix() string { return "ght" + strconv.Itoa(os.Getpid()) + "-" }

// CleanupStale deletes the namespaces of test runs (prefix "ght<pid>-")
// whose process is gone, with everything inside them.
func CleanupStale(ctx context.Context) error {
	names, err := ListNetNS("ght")
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		i := strings.IndexByte(n, '-')
		pid, perr := strconv.Atoi(n[3:max(i, 3)])
		if perr != nil || alive(pid) {
			continue
		}
		errs = append(errs, DeleteNetNS(ctx, n))
	}
	return errors.Join(errs...)
}

// NS returns the namespace name of a router, switch, node or pod.
func (l *Lab) NS(name string) string { return l.Spec.Prefix + name }

// Run runs a command in the named lab namespace (short name).
func (l *Lab) Run(ctx context.Context, name string, argv ...string) (string, error) {
	return Run(ctx, l.NS(name), argv[0], argv[1:]...)
}

// Attach returns the Lab of a topology built earlier (by another process,
// e.g. `lab up`), to inspect it, start proxies in it or tear it down.
// Daemons started by the other process are not known to it.
func Attach(spec Spec) *Lab { return &Lab{Spec: spec, daemons: map[string]*Daemon{}} }

// Build creates the namespaces, bridges, links, addresses and static
// routes of spec. Routers and agents are started separately. On error
// everything created so far is removed.
func Build(ctx context.Context, spec Spec) (_ *Lab, err error) {
	if spec.Prefix == "" || spec.RunDir == "" {
		return nil, errors.New("build lab: Prefix and RunDir are required")
	}
	// FRR drops to user frr: the run directory must be traversable.
	if err := os.MkdirAll(spec.RunDir, 0o755); err != nil {
		return nil, fmt.Errorf("build lab: %w", err)
	}
	if err := os.Chmod(spec.RunDir, 0o755); err != nil {
		return nil, fmt.Errorf("build lab: %w", err)
	}
	l := &Lab{Spec: spec, daemons: map[string]*Daemon{}}
	defer func() {
		if err != nil {
			_ = l.Close()
		}
	}()
	isRouter := map[string]bool{}
	var names []string
	for _, r := range spec.Routers {
		isRouter[r.Name] = true
		names = append(names, r.Name)
	}
	for _, g := range spec.Segments {
		if !isRouter[g.Host] {
			names = append(names, g.Host)
		}
	}
	for _, n := range spec.Nodes {
		names = append(names, n.Name)
	}
	for _, n := range names {
		if err := AddNetNS(ctx, l.NS(n)); err != nil {
			return nil, fmt.Errorf("build lab: %w", err)
		}
		// Routers forward; nodes forward for their pods.
		if _, err := l.Run(ctx, n, "sysctl", "-qw", "net.ipv4.ip_forward=1"); err != nil {
			return nil, fmt.Errorf("build lab: %w", err)
		}
	}
	for _, g := range spec.Segments {
		if err := l.buildSegment(ctx, g); err != nil {
			return nil, fmt.Errorf("build lab: %w", err)
		}
	}
	for _, k := range spec.Links {
		if err := l.buildLink(ctx, k); err != nil {
			return nil, fmt.Errorf("build lab: %w", err)
		}
	}
	for _, n := range spec.Nodes {
		if err := l.buildNode(ctx, n); err != nil {
			return nil, fmt.Errorf("build lab: %w", err)
		}
	}
	return l, nil
}

func (l *Lab) buildSegment(ctx context.Context, g Segment) error {
	steps := [][]string{
		{"ip", "link", "add", g.Bridge(), "type", "bridge"},
		{"ip", "link", "set", g.Bridge(), "up"},
	}
	if g.Gateway.IsValid() {
		steps = append(steps, []string{"ip", "addr", "add", fmt.Sprintf("%s/%d", g.Gateway, g.CIDR.Bits()), "dev", g.Bridge()})
	}
	for _, s := range steps {
		if _, err := l.Run(ctx, g.Host, s...); err != nil {
			return fmt.Errorf("segment %s: %w", g.Name, err)
		}
	}
	return nil
}

func (l *Lab) buildLink(ctx context.Context, k Link) error {
	ifA, ifB := ifName("to-"+k.B), ifName("to-"+k.A)
	if _, err := Run(ctx, "", "ip", "link", "add", ifA, "netns", l.NS(k.A), "type", "veth", "peer", "name", ifB, "netns", l.NS(k.B)); err != nil {
		return fmt.Errorf("link %s-%s: %w", k.A, k.B, err)
	}
	for _, side := range []struct {
		ns, dev string
		addr    string
	}{{k.A, ifA, k.AAddr.String()}, {k.B, ifB, k.BAddr.String()}} {
		if _, err := l.Run(ctx, side.ns, "ip", "addr", "add", side.addr, "dev", side.dev); err != nil {
			return fmt.Errorf("link %s-%s: %w", k.A, k.B, err)
		}
		if _, err := l.Run(ctx, side.ns, "ip", "link", "set", side.dev, "up"); err != nil {
			return fmt.Errorf("link %s-%s: %w", k.A, k.B, err)
		}
	}
	return nil
}

func (l *Lab) buildNode(ctx context.Context, n Node) error {
	g, ok := l.Spec.Segment(n.Segment)
	if !ok {
		return fmt.Errorf("node %s: unknown segment %q", n.Name, n.Segment)
	}
	port := ifName("v-" + n.Name)
	if _, err := Run(ctx, "", "ip", "link", "add", "eth0", "netns", l.NS(n.Name), "type", "veth", "peer", "name", port, "netns", l.NS(g.Host)); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	if _, err := l.Run(ctx, g.Host, "ip", "link", "set", port, "master", g.Bridge(), "up"); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	steps := [][]string{
		{"ip", "addr", "add", n.Addr.String(), "dev", "eth0"},
		{"ip", "link", "set", "eth0", "up"},
	}
	if n.Gateway.IsValid() {
		steps = append(steps, []string{"ip", "route", "add", "default", "via", n.Gateway.String(), "dev", "eth0"})
	}
	for _, s := range steps {
		if _, err := l.Run(ctx, n.Name, s...); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
	}
	return nil
}

// addDaemon records a started daemon under its name.
func (l *Lab) addDaemon(d *Daemon) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.daemons[d.Name] = d
}

// Daemon returns a daemon the lab started, by name ("tor1/bgpd",
// "spine/bird", "rack1-node1/gingham-node").
func (l *Lab) Daemon(name string) (*Daemon, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d, ok := l.daemons[name]
	return d, ok
}

// Daemons returns the daemons the lab started and has not stopped.
func (l *Lab) Daemons() []*Daemon {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*Daemon, 0, len(l.daemons))
	for _, d := range l.daemons {
		out = append(out, d)
	}
	return out
}

// StopDaemon stops a daemon the lab started and forgets it.
func (l *Lab) StopDaemon(name string, grace time.Duration) error {
	l.mu.Lock()
	d, ok := l.daemons[name]
	delete(l.daemons, name)
	l.mu.Unlock()
	if !ok {
		return fmt.Errorf("stop %s: not running", name)
	}
	return d.Stop(grace)
}

// CloseProxies stops the lab's API proxies only.
func (l *Lab) CloseProxies() error {
	l.mu.Lock()
	proxies := l.proxies
	l.proxies = nil
	l.mu.Unlock()
	var errs []error
	for _, p := range proxies {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}

// Close stops every daemon and proxy and deletes every namespace with the
// lab's prefix (pods included). The run directory is kept for its logs.
func (l *Lab) Close() error {
	l.mu.Lock()
	daemons, proxies := l.daemons, l.proxies
	l.daemons, l.proxies = map[string]*Daemon{}, nil
	l.mu.Unlock()
	var errs []error
	for _, d := range daemons {
		errs = append(errs, d.Stop(5*time.Second))
	}
	for _, p := range proxies {
		errs = append(errs, p.Close())
	}
	errs = append(errs, Teardown(context.Background(), l.Spec.Prefix))
	return errors.Join(errs...)
}

// Teardown deletes every namespace whose name starts with prefix, after
// stopping the processes inside it.
func Teardown(ctx context.Context, prefix string) error {
	if prefix == "" {
		return errors.New("teardown: empty prefix")
	}
	names, err := ListNetNS(prefix)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		errs = append(errs, DeleteNetNS(ctx, n))
	}
	return errors.Join(errs...)
}

// Adopt records a daemon the caller started with StartDaemon in one of the
// lab's namespaces (with its own configuration), so that Daemon finds it
// and Close stops it like the lab's own.
func (l *Lab) Adopt(d *Daemon) { l.addDaemon(d) }
