package labnet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Daemon is a long-running process started by the lab in a namespace, in
// its own session (so it outlives `lab up` and is stopped as a group).
type Daemon struct {
	Name    string // e.g. "tor1/bgpd"
	NS      string // namespace it runs in
	PID     int
	LogPath string // standard output and error
	done    chan struct{}
	err     error
}

// StartDaemon starts argv inside ns with extra environment env, output to
// logPath, in a new session.
func StartDaemon(name, ns, logPath string, env []string, argv ...string) (*Daemon, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: open log: %w", name, err)
	}
	defer logf.Close()
	var cmd *exec.Cmd
	if ns == "" {
		cmd = exec.Command(argv[0], argv[1:]...)
	} else {
		cmd = exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	}
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", name, strings.Join(argv, " "), err)
	}
	d := &Daemon{Name: name, NS: ns, PID: cmd.Process.Pid, LogPath: logPath, done: make(chan struct{})}
	go func() {
		d.err = cmd.Wait()
		close(d.done)
	}()
	return d, nil
}

// Running reports whether the daemon has not exited.
func (d *Daemon) Running() bool {
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// Exited returns a channel closed when the daemon exits.
func (d *Daemon) Exited() <-chan struct{} { return d.done }

// Signal sends sig to the daemon's process group.
func (d *Daemon) Signal(sig syscall.Signal) error {
	if err := syscall.Kill(-d.PID, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %s (pid %d): %w", d.Name, d.PID, err)
	}
	return nil
}

// Stop sends SIGTERM to the daemon's process group, then SIGKILL after
// grace, and waits for it to exit.
func (d *Daemon) Stop(grace time.Duration) error {
	if !d.Running() {
		return nil
	}
	if err := d.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-d.done:
		return nil
	case <-time.After(grace):
	}
	_ = d.Signal(syscall.SIGKILL)
	select {
	case <-d.done:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("stop %s (pid %d): still running after SIGKILL", d.Name, d.PID)
	}
}

// StopPID stops a process that is not our child (recorded by another run):
// SIGTERM to it (so it can stop its children itself), then, after grace,
// SIGKILL to it and to every descendant it left.
func StopPID(pid int, grace time.Duration) {
	if pid <= 1 || !alive(pid) {
		return
	}
	kids := Descendants(pid)
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if alive(pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, k := range kids {
		for alive(k) && time.Now().Before(deadline.Add(5*time.Second)) {
			time.Sleep(50 * time.Millisecond)
		}
		if alive(k) {
			_ = syscall.Kill(k, syscall.SIGKILL)
		}
	}
}

// Descendants returns the PIDs of pid's children, grandchildren, ...
// (from /proc, by parent PID).
func Descendants(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 {
			parent[p], _ = strconv.Atoi(f[1])
		}
	}
	var out []int
	want := map[int]bool{pid: true}
	for changed := true; changed; {
		changed = false
		for p, pp := range parent {
			if want[pp] && !want[p] {
				want[p] = true
				out = append(out, p)
				changed = true
			}
		}
	}
	return out
}

// Alive reports whether pid exists and is not a zombie.
func Alive(pid int) bool { return alive(pid) }

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the ")" that closes the command name.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// killNetNSProcs stops every process inside the namespace.
func killNetNSProcs(ctx context.Context, ns string) {
	pids := NetNSPids(ctx, ns)
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(3 * time.Second)
	for _, pid := range pids {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if alive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// Comm is a process's command name ("" when it is gone).
func Comm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

// Lines splits command output into its non-blank lines.
func Lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}
