package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gingham-net/gingham/test/benchsuite/report"
)

// cmdBegin empties the results directory and records the machine, the
// versions and the load at the start.
func cmdBegin(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("begin", flag.ExitOnError)
	dir := fs.String("results", DefaultResults, "results directory")
	command := fs.String("command", "make bench", "the command that runs the suite, for the report")
	_ = fs.Parse(args)
	// Only what earlier runs wrote: result files, the run record, logs.
	old, _ := filepath.Glob(filepath.Join(*dir, "*.json"))
	for _, p := range old {
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	for _, sub := range []string{"run", "logs"} {
		if err := os.RemoveAll(filepath.Join(*dir, sub)); err != nil {
			return err
		}
	}
	r := &report.Run{Started: time.Now(), Command: *command, Machine: machine(), Go: runtime.Version(),
		Commit: commit(ctx), Versions: versions(ctx), LoadStart: loadavg()}
	r.BusyStart, r.StealStart = cpuTimes()
	return report.WriteRun(*dir, r)
}

// cmdEnd records the end of the run.
func cmdEnd(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("end", flag.ExitOnError)
	dir := fs.String("results", DefaultResults, "results directory")
	_ = fs.Parse(args)
	r, err := report.ReadRun(*dir)
	if err != nil {
		return err
	}
	r.Finished, r.LoadEnd = time.Now(), loadavg()
	r.BusyEnd, r.StealEnd = cpuTimes()
	return report.WriteRun(*dir, r)
}

// cmdStep runs one part of the suite as a child process and records its
// wall time, CPU time and the highest load average while it ran. The
// child's exit status is passed through, and recorded even on failure.
func cmdStep(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("step", flag.ExitOnError)
	dir := fs.String("results", DefaultResults, "results directory")
	name := fs.String("name", "", "name of the step in the report")
	_ = fs.Parse(args)
	argv := fs.Args()
	if *name == "" || len(argv) == 0 {
		return errors.New("usage: step -results DIR -name NAME -- CMD ARGS...")
	}
	st := report.Step{Name: *name, Command: strings.Join(argv, " "), Started: time.Now(), LoadMax: loadavg()[0]}
	cmd := exec.Command(argv[0], argv[1:]...) // not CommandContext: the child gets the same signal and cleans up
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	runErr := cmd.Start()
	if runErr == nil {
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		tick := time.NewTicker(5 * time.Second)
	wait:
		for {
			select {
			case runErr = <-done:
				break wait
			case <-ctx.Done():
				// Interrupted: the child got the signal too; keep waiting for it.
				ctx = context.Background()
			case <-tick.C:
				st.LoadMax = max(st.LoadMax, loadavg()[0])
			}
		}
		tick.Stop()
	}
	st.Finished = time.Now()
	if ps := cmd.ProcessState; ps != nil {
		st.CPUSeconds = (ps.UserTime() + ps.SystemTime()).Seconds()
		st.ExitCode = ps.ExitCode()
	} else {
		st.ExitCode = -1
	}
	fmt.Fprintf(os.Stderr, "benchsuite: step %s: %s, %.0f CPU-s, exit %d\n", st.Name, st.Wall().Round(time.Second), st.CPUSeconds, st.ExitCode)
	r, err := report.ReadRun(*dir)
	if err != nil {
		return errors.Join(runErr, err)
	}
	r.Steps = append(r.Steps, st)
	if err := report.WriteRun(*dir, r); err != nil {
		return errors.Join(runErr, err)
	}
	if st.ExitCode > 0 {
		return exitCode(st.ExitCode)
	}
	return runErr
}

// machine describes this host.
func machine() report.Machine {
	m := report.Machine{NProc: runtime.NumCPU()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				m.MemGiB = kb / (1 << 20)
			}
		}
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	return m
}

// versions are those of the references and tools, from Debian's package
// database (what is installed is what ran), and of the Go modules gingham
// embeds.
func versions(ctx context.Context) map[string]string {
	v := map[string]string{}
	for name, pkg := range map[string]string{
		"BIRD": "bird2", "FRR": "frr", "gobgpd": "gobgpd", "iperf3": "iperf3",
		"CNI plugins (ptp, host-local)": "containernetworking-plugins", "iproute2": "iproute2",
	} {
		out, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f", "${Version}", pkg).Output()
		if s := strings.TrimSpace(string(out)); err == nil && s != "" {
			v[name] = s
		} else {
			v[name] = "not installed"
		}
	}
	for name, mod := range map[string]string{"GoBGP (embedded)": "github.com/osrg/gobgp/v4", "vishvananda/netlink": "github.com/vishvananda/netlink"} {
		out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Version}}", mod).Output()
		if err == nil {
			v[name] = strings.TrimSpace(string(out))
		}
	}
	return v
}

// commit is gingham's commit, "-dirty" when files outside docs/ differ
// (the report itself is written into docs/).
func commit(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!docs").Output()
	if err == nil && len(bytes.TrimSpace(st)) > 0 {
		c += "-dirty"
	}
	return c
}

// loadavg is /proc/loadavg's three figures.
func loadavg() [3]float64 {
	var l [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return l
	}
	f := strings.Fields(string(b))
	for i := 0; i < 3 && i < len(f); i++ {
		l[i], _ = strconv.ParseFloat(f[i], 64)
	}
	return l
}

// cpuTimes are the CPU-seconds all CPUs spent busy (user, nice, system,
// irq, softirq) and stolen by the hypervisor since boot.
func cpuTimes() (busy, steal float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0
	}
	ticks := func(i int) float64 {
		x, _ := strconv.ParseFloat(f[i], 64)
		return x / 100 // USER_HZ
	}
	return ticks(1) + ticks(2) + ticks(3) + ticks(6) + ticks(7), ticks(8)
}
