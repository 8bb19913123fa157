package kcluster

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gingham-net/gingham/test/labnet"
)

// RouteMonitor records `ip -o monitor route` in a namespace of the
// cluster (a node or a router) until Stop.
type RouteMonitor struct {
	Name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
}

// Write collects the monitor's output (safe for the command's copier).
func (m *RouteMonitor) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.out.Write(p)
}

// MonitorRoutes starts a route monitor in the named namespace.
func (c *Cluster) MonitorRoutes(ctx context.Context, name string) (*RouteMonitor, error) {
	m := &RouteMonitor{Name: name}
	m.cmd = labnet.Command(ctx, c.Lab.NS(name), "ip", "-o", "monitor", "route")
	m.cmd.Stdout, m.cmd.Stderr = m, m
	if err := m.cmd.Start(); err != nil {
		return nil, fmt.Errorf("route monitor in %s: %w", name, err)
	}
	// The monitor subscribes some time after it starts: add and remove a
	// marker route (TEST-NET-2) until the monitor reports it, so no event
	// after MonitorRoutes returns is missed.
	const marker = "198.51.100.77/32"
	err := c.WaitFor(ctx, 30*time.Second, "route monitor in "+name, func(ctx context.Context) (bool, error) {
		_, _ = c.Lab.Run(ctx, name, "ip", "route", "del", "blackhole", marker) // left by a try the monitor missed
		if _, err := c.Lab.Run(ctx, name, "ip", "route", "add", "blackhole", marker); err != nil {
			return false, err
		}
		time.Sleep(100 * time.Millisecond) // the monitor's read of the event, not a negative assertion
		m.mu.Lock()
		defer m.mu.Unlock()
		return strings.Contains(m.out.String(), "198.51.100.77"), nil
	})
	if _, derr := c.Lab.Run(ctx, name, "ip", "route", "del", "blackhole", marker); err == nil {
		err = derr
	}
	if err != nil {
		m.Stop(netip.Prefix{})
		return nil, err
	}
	return m, nil
}

// Deletion is a route deletion a monitor saw.
type Deletion struct {
	Where string       // namespace (short name)
	Dst   netip.Prefix // the route's destination
	Line  string       // as ip monitor printed it
}

func (d Deletion) String() string { return d.Where + ": " + d.Line }

// Stop ends the monitor and returns the deletions it saw of routes
// within pool (an invalid pool matches nothing).
func (m *RouteMonitor) Stop(pool netip.Prefix) []Deletion {
	_ = m.cmd.Process.Kill()
	_ = m.cmd.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	var del []Deletion
	for _, l := range labnet.Lines(m.out.String()) {
		f := strings.Fields(l)
		if len(f) < 2 || f[0] != "Deleted" {
			continue
		}
		dst := f[1]
		if dst == "blackhole" || dst == "unreachable" {
			dst = f[min(2, len(f)-1)]
		}
		p, err := netip.ParsePrefix(dst)
		if err != nil {
			a, aerr := netip.ParseAddr(dst)
			if aerr != nil {
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if pool.IsValid() && pool.Overlaps(p) {
			del = append(del, Deletion{Where: m.Name, Dst: p, Line: l})
		}
	}
	return del
}

// Routes returns a namespace's IPv4 routes of a protocol ("96" for
// gingham's, "bgp" for FRR's), sorted.
func (c *Cluster) Routes(ctx context.Context, name, proto string) ([]string, error) {
	out, err := c.Lab.Run(ctx, name, "ip", "-4", "route", "show", "proto", proto)
	if err != nil {
		return nil, err
	}
	l := labnet.Lines(out)
	sort.Strings(l)
	return l, nil
}

var pingSummary = regexp.MustCompile(`(\d+) packets transmitted, (\d+) (?:packets )?received`)

// PingResult is a ping's summary.
type PingResult struct{ Sent, Received int }

// Lost is the number of echo requests without a reply.
func (p PingResult) Lost() int { return p.Sent - p.Received }

// Ping runs ping in a pod (busybox's, 5 per second) for the given number
// of seconds and returns its summary.
func (c *Cluster) Ping(ctx context.Context, namespace, pod, dst string, seconds int) (PingResult, error) {
	out, err := c.Kubectl(ctx, "-n", namespace, "exec", pod, "--", "ping", "-q", "-i", "0.2", "-w", strconv.Itoa(seconds), dst)
	m := pingSummary.FindStringSubmatch(out)
	if m == nil {
		return PingResult{}, fmt.Errorf("ping %s -> %s: no summary (%v): %s", pod, dst, err, out)
	}
	sent, _ := strconv.Atoi(m[1])
	recv, _ := strconv.Atoi(m[2])
	return PingResult{Sent: sent, Received: recv}, nil
}

// Ginghamctl runs bin/ginghamctl as the administrator.
func (c *Cluster) Ginghamctl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.O.Bin+"/ginghamctl", append([]string{"--kubeconfig", c.AdminKubeconfig()}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ginghamctl %s: %w", strings.Join(args, " "), err)
	}
	return string(out), nil
}

// GinghamPod is the name of the gingham-node pod on node.
func (c *Cluster) GinghamPod(ctx context.Context, node string) (string, error) {
	out, err := c.Kubectl(ctx, "-n", "gingham-system", "get", "pods", "-l", "app.kubernetes.io/name=gingham-node",
		"--field-selector", "spec.nodeName="+node, "-o", "jsonpath={.items[*].metadata.name}")
	if err != nil {
		return "", err
	}
	f := strings.Fields(out)
	if len(f) != 1 {
		return "", fmt.Errorf("gingham-node pods on %s: %q", node, out)
	}
	return f[0], nil
}

// StopNode stops node's kubelet, containers, containerd and kube-proxy, as
// a node shut down: everything in its namespace and cgroups.
func (c *Cluster) StopNode(ctx context.Context, node string) error {
	return stopNode(ctx, c.O.Prefix, node, c.st.PIDs["node-"+node])
}

// PodIPs returns the addresses of the cluster's Running pods that are not
// on the host network.
func (c *Cluster) PodIPs(ctx context.Context) (map[netip.Addr]bool, error) {
	out, err := c.Kubectl(ctx, "get", "pods", "-A", "--field-selector=status.phase=Running", "-o",
		`jsonpath={range .items[?(@.spec.hostNetwork!=true)]}{.status.podIP}{"\n"}{end}`)
	if err != nil {
		return nil, err
	}
	ips := map[netip.Addr]bool{}
	for _, l := range labnet.Lines(out) {
		if a, err := netip.ParseAddr(strings.TrimSpace(l)); err == nil {
			ips[a] = true
		}
	}
	return ips, nil
}
