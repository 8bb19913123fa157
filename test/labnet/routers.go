package labnet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// FRR and BIRD binaries (Debian frr and bird2).
const (
	zebraBin = "/usr/lib/frr/zebra"
	bgpdBin  = "/usr/lib/frr/bgpd"
)

// RouterDir is the directory of a router's config, sockets, pid files and
// logs (for FRR it is also the vty socket directory vtysh needs).
func (l *Lab) RouterDir(router string) string { return filepath.Join(l.Spec.RunDir, "routers", router) }

// BirdSocket is the control socket of a BIRD router (birdc -s).
func (l *Lab) BirdSocket(router string) string { return filepath.Join(l.RouterDir(router), "bird.ctl") }

// StartRouters writes each router's configuration and starts its daemons.
func (l *Lab) StartRouters(ctx context.Context) error {
	for _, r := range l.Spec.Routers {
		if err := l.StartRouter(ctx, r.Name); err != nil {
			return err
		}
	}
	return nil
}

// StartRouter (re)starts one router's daemons with a fresh configuration.
func (l *Lab) StartRouter(ctx context.Context, name string) error {
	r, ok := l.Spec.Router(name)
	if !ok {
		return fmt.Errorf("start router %s: unknown router", name)
	}
	dir := l.RouterDir(name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("start router %s: %w", name, err)
	}
	switch r.Kind {
	case FRR:
		return l.startFRR(ctx, r, dir)
	case BIRD:
		return l.startBIRD(ctx, r, dir)
	}
	return fmt.Errorf("start router %s: unknown kind %q", name, r.Kind)
}

// StopRouter stops a router's daemons (SIGTERM; SIGKILL after grace).
func (l *Lab) StopRouter(name string, grace time.Duration) error {
	var errs []error
	for _, d := range []string{"/bird", "/bgpd", "/zebra"} {
		if _, ok := l.Daemon(name + d); ok {
			errs = append(errs, l.StopDaemon(name+d, grace))
		}
	}
	return errors.Join(errs...)
}

func (l *Lab) startFRR(ctx context.Context, r Router, dir string) error {
	files := map[string]string{
		"zebra.conf": "hostname " + r.Name + "\nlog stdout informational\n",
		"bgpd.conf":  FRRConfig(r),
		"vtysh.conf": "service integrated-vtysh-config\n",
	}
	for f, body := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(body), 0o644); err != nil {
			return fmt.Errorf("start router %s: %w", r.Name, err)
		}
	}
	// The daemons drop to user frr: the directory must be theirs.
	if _, err := Run(ctx, "", "chown", "-R", "frr:frr", dir); err != nil {
		return fmt.Errorf("start router %s: %w", r.Name, err)
	}
	zserv := filepath.Join(dir, "zserv.api")
	common := []string{"-z", zserv, "--vty_socket", dir, "-A", "127.0.0.1", "-P", "0"}
	zebra, err := StartDaemon(r.Name+"/zebra", l.NS(r.Name), filepath.Join(dir, "zebra.log"), nil,
		append([]string{zebraBin, "-f", filepath.Join(dir, "zebra.conf"), "-i", filepath.Join(dir, "zebra.pid")}, common...)...)
	if err != nil {
		return fmt.Errorf("start router %s: %w", r.Name, err)
	}
	l.addDaemon(zebra)
	if err := waitFile(ctx, zserv, 10*time.Second); err != nil {
		return fmt.Errorf("start router %s: zebra: %w (log %s)", r.Name, err, zebra.LogPath)
	}
	bgpd, err := StartDaemon(r.Name+"/bgpd", l.NS(r.Name), filepath.Join(dir, "bgpd.log"), nil,
		append([]string{bgpdBin, "-f", filepath.Join(dir, "bgpd.conf"), "-i", filepath.Join(dir, "bgpd.pid")}, common...)...)
	if err != nil {
		return fmt.Errorf("start router %s: %w", r.Name, err)
	}
	l.addDaemon(bgpd)
	if err := waitFile(ctx, filepath.Join(dir, "bgpd.vty"), 10*time.Second); err != nil {
		return fmt.Errorf("start router %s: bgpd: %w (log %s)", r.Name, err, bgpd.LogPath)
	}
	return nil
}

func (l *Lab) startBIRD(ctx context.Context, r Router, dir string) error {
	conf := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(conf, []byte(BIRDConfig(r)), 0o644); err != nil {
		return fmt.Errorf("start router %s: %w", r.Name, err)
	}
	sock := l.BirdSocket(r.Name)
	_ = os.Remove(sock)
	d, err := StartDaemon(r.Name+"/bird", l.NS(r.Name), filepath.Join(dir, "bird.log"), nil,
		"bird", "-f", "-c", conf, "-s", sock, "-P", filepath.Join(dir, "bird.pid"))
	if err != nil {
		return fmt.Errorf("start router %s: %w", r.Name, err)
	}
	l.addDaemon(d)
	if err := waitFile(ctx, sock, 10*time.Second); err != nil {
		return fmt.Errorf("start router %s: bird: %w (log %s)", r.Name, err, d.LogPath)
	}
	return nil
}

// Vtysh runs one vtysh command on an FRR router.
func (l *Lab) Vtysh(ctx context.Context, router, command string) (string, error) {
	return Run(ctx, "", "vtysh", "--vty_socket", l.RouterDir(router), "-c", command)
}

// Birdc runs one birdc command on a BIRD router.
func (l *Lab) Birdc(ctx context.Context, router string, command ...string) (string, error) {
	return Run(ctx, "", "birdc", append([]string{"-s", l.BirdSocket(router)}, command...)...)
}

// BGPStates returns the session state per neighbor address of a router,
// as the router reports it ("Established", "Active", ...).
func (l *Lab) BGPStates(ctx context.Context, router string) (map[netip.Addr]string, error) {
	r, ok := l.Spec.Router(router)
	if !ok {
		return nil, fmt.Errorf("bgp states: unknown router %s", router)
	}
	out := map[netip.Addr]string{}
	switch r.Kind {
	case FRR:
		js, err := l.Vtysh(ctx, router, "show bgp summary json")
		if err != nil {
			return nil, fmt.Errorf("bgp states of %s: %w", router, err)
		}
		var sum struct {
			IPv4 struct {
				Peers map[string]struct {
					State string `json:"state"`
				} `json:"peers"`
			} `json:"ipv4Unicast"`
		}
		if err := json.Unmarshal([]byte(js), &sum); err != nil {
			return nil, fmt.Errorf("bgp states of %s: parse %q: %w", router, js, err)
		}
		for a, p := range sum.IPv4.Peers {
			if addr, err := netip.ParseAddr(a); err == nil {
				out[addr] = p.State
			}
		}
	case BIRD:
		txt, err := l.Birdc(ctx, router, "show", "protocols")
		if err != nil {
			return nil, fmt.Errorf("bgp states of %s: %w", router, err)
		}
		byName := map[string]string{}
		for _, line := range strings.Split(txt, "\n") {
			f := strings.Fields(line)
			if len(f) >= 4 && f[1] == "BGP" {
				byName[f[0]] = f[len(f)-1]
			}
		}
		for _, n := range r.Neighbors {
			if s, ok := byName[birdProtoName(n)]; ok {
				out[n.Addr] = s
			}
		}
	}
	return out, nil
}

// WaitEstablished waits until the router reports each neighbor
// Established.
func (l *Lab) WaitEstablished(ctx context.Context, router string, neighbors ...netip.Addr) error {
	var last map[netip.Addr]string
	for {
		states, err := l.BGPStates(ctx, router)
		if err == nil {
			last = states
			done := true
			for _, n := range neighbors {
				done = done && states[n] == "Established"
			}
			if done {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for BGP sessions of %s to %v: %w (last states %v, last error %v)", router, neighbors, ctx.Err(), last, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// WaitRouterSessions waits until every router-to-router session is
// Established (sessions to nodes need the agent and are not waited for).
func (l *Lab) WaitRouterSessions(ctx context.Context) error {
	for _, r := range l.Spec.Routers {
		var want []netip.Addr
		for _, n := range r.Neighbors {
			if !n.Node {
				want = append(want, n.Addr)
			}
		}
		if err := l.WaitEstablished(ctx, r.Name, want...); err != nil {
			return err
		}
	}
	return nil
}

// waitFile waits until path exists.
func waitFile(ctx context.Context, path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear within %s", path, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
