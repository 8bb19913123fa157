package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/internal/testenv"
	"github.com/gingham-net/gingham/test/bench/result"
	"github.com/gingham-net/gingham/test/labnet"
)

// runInfo describes the run once; every result file carries it.
type runInfo struct {
	machine  string
	versions map[string]string
	command  string
}

func collectRunInfo(ctx context.Context) runInfo {
	sh := func(name string, args ...string) string {
		out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
		if err != nil {
			return "?"
		}
		return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	cpu := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := "?"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		f := strings.Fields(strings.SplitN(string(b), "\n", 2)[0])
		if len(f) >= 2 {
			if kb, err := strconv.ParseFloat(f[1], 64); err == nil {
				mem = fmt.Sprintf("%.0f GiB", kb/(1<<20))
			}
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	loadAvg := strings.Join(strings.Fields(string(load))[:3], " ")
	v := map[string]string{
		"gingham": sh("git", "-C", testenv.Root(), "describe", "--always", "--dirty", "--abbrev=12"),
		"kernel":  sh("uname", "-r"),
		"bird":    strings.TrimPrefix(sh("bird", "--version"), "BIRD version "),
		"frr":     strings.TrimPrefix(sh("/usr/lib/frr/bgpd", "--version"), "bgpd version "),
		"gobgpd":  strings.TrimPrefix(sh("gobgpd", "--version"), "gobgpd version "),
		"go":      runtime.Version(),
	}
	return runInfo{
		machine: fmt.Sprintf("%s, nproc %s, %s RAM, kernel %s; load average at start %s; shared machine, no CPU pinning",
			cpu, sh("nproc"), mem, v["kernel"], loadAvg),
		versions: v,
		command:  strings.TrimSpace("go run ./test/bench " + strings.Join(os.Args[1:], " ")),
	}
}

// String is the one-line Markdown header of the printout.
func (ri runInfo) String() string {
	return fmt.Sprintf("Machine: %s; BIRD %s; FRR %s; gobgpd %s; gingham %s; %s\n", ri.machine,
		ri.versions["bird"], ri.versions["frr"], ri.versions["gobgpd"], ri.versions["gingham"], ri.versions["go"])
}

// newFile starts a result file for one benchmark.
func (ri runInfo) newFile(bench, title, method string, started time.Time) *result.File {
	return &result.File{Bench: bench, Title: title, Method: method, Command: ri.command, Machine: ri.machine,
		Versions: ri.versions, Started: started}
}

// secondsOf converts durations to seconds.
func secondsOf(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}

// met reports whether a lower-is-better median satisfies limit.
func met(s result.Stat, limit float64) *bool {
	if s.N == 0 {
		return nil
	}
	ok := s.Median <= limit
	return &ok
}

// percentile of xs (nearest rank); p in [0,100].
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	i := int(p/100*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// procCPU is the CPU time (user+system, seconds) of the processes so far.
func procCPU(pids ...int) (float64, error) {
	var sum float64
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return 0, fmt.Errorf("cpu of %d: %w", pid, err)
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		// After the command: state(0) ppid ... utime(11) stime(12).
		if len(f) < 13 {
			return 0, fmt.Errorf("cpu of %d: short stat", pid)
		}
		u, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		sum += (u + st) / 100 // USER_HZ
	}
	return sum, nil
}

// procRSS is the summed VmRSS of the processes in MiB.
func procRSS(pids ...int) (float64, error) {
	var sum float64
	for _, pid := range pids {
		kb, err := vmRSS(pid)
		if err != nil {
			return 0, err
		}
		sum += kb
	}
	return sum / 1024, nil
}

// resetAPI deletes every object a benchmark creates, so the next one
// starts from an empty cluster: pods, nodes and all gingham.dev objects.
func resetAPI(ctx context.Context, c client.Client) error {
	var errs []error
	if err := c.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace("default"), client.GracePeriodSeconds(0)); err != nil {
		errs = append(errs, fmt.Errorf("delete pods: %w", err))
	}
	for _, o := range []client.Object{&corev1.Node{}, &v1.BGPPeer{}, &v1.BGPConfiguration{}, &v1.IPPool{},
		&v1.IPAMBlock{}, &v1.BlockAffinity{}, &v1.IPAMHandle{}, &v1.IPAMConfiguration{}, &v1.GinghamNodeStatus{}} {
		if err := c.DeleteAllOf(ctx, o); err != nil {
			errs = append(errs, fmt.Errorf("delete all %T: %w", o, err))
		}
	}
	return errors.Join(errs...)
}

// attach connects an existing lab namespace to a segment's bridge with a
// veth (eth0 inside, v-<name> on the bridge) and gives it addrs. It is
// what labnet does for nodes, for namespaces that are routers (the
// injector, the monitor and the reference daemons of B3).
func attach(ctx context.Context, lab *labnet.Lab, seg labnet.Segment, name string, addrs ...netip.Prefix) error {
	port := "v-" + name
	if len(port) > 15 {
		port = port[:15]
	}
	if _, err := labnet.Run(ctx, "", "ip", "link", "add", "eth0", "netns", lab.NS(name), "type", "veth",
		"peer", "name", port, "netns", lab.NS(seg.Host)); err != nil {
		return fmt.Errorf("attach %s: %w", name, err)
	}
	if _, err := lab.Run(ctx, seg.Host, "ip", "link", "set", port, "master", seg.Bridge(), "up"); err != nil {
		return fmt.Errorf("attach %s: %w", name, err)
	}
	for _, a := range addrs {
		if _, err := lab.Run(ctx, name, "ip", "addr", "add", a.String(), "dev", "eth0"); err != nil {
			return fmt.Errorf("attach %s: %w", name, err)
		}
	}
	if _, err := lab.Run(ctx, name, "ip", "link", "set", "eth0", "up"); err != nil {
		return fmt.Errorf("attach %s: %w", name, err)
	}
	return nil
}

// poll calls cond every interval until it returns true or an error, or
// ctx ends.
func poll(ctx context.Context, interval time.Duration, what string, cond func() (bool, error)) error {
	var last error
	for {
		ok, err := cond()
		if err == nil && ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w (last error: %v)", what, ctx.Err(), last)
		case <-time.After(interval):
		}
	}
}

// flushProto deletes every route of a kernel protocol in a namespace.
func flushProto(ctx context.Context, ns string, proto int) error {
	_, err := labnet.Run(ctx, ns, "ip", "route", "flush", "proto", strconv.Itoa(proto))
	return err
}

// markdownStat renders a Stat of seconds or MiB: "1.23 (1.01–1.50)".
func markdownStat(s result.Stat, format string) string {
	return fmt.Sprintf(format+" ("+format+"–"+format+")", s.Median, s.Min, s.Max)
}

// ratio renders gingham/reference or "–".
func ratio(g, ref result.Stat) string {
	r := result.Ratio(g, ref)
	if r == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", r)
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05.000 ")+format+"\n", a...)
}
