package labnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// netnsDir is where iproute2 keeps named network namespaces.
const netnsDir = "/var/run/netns"

// NetNSPath returns the bind-mount path of the named namespace.
func NetNSPath(name string) string { return filepath.Join(netnsDir, name) }

// AddNetNS creates a named network namespace with loopback up.
func AddNetNS(ctx context.Context, name string) error {
	if _, err := Run(ctx, "", "ip", "netns", "add", name); err != nil {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	if _, err := Run(ctx, name, "ip", "link", "set", "lo", "up"); err != nil {
		return fmt.Errorf("loopback up in %s: %w", name, err)
	}
	return nil
}

// DeleteNetNS kills every process left in the namespace (as reported by
// `ip netns pids`, so only processes inside it) and deletes it. A missing
// namespace is not an error.
func DeleteNetNS(ctx context.Context, name string) error {
	if _, err := os.Stat(NetNSPath(name)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	killNetNSProcs(ctx, name)
	if _, err := Run(ctx, "", "ip", "netns", "del", name); err != nil {
		return fmt.Errorf("delete namespace %s: %w", name, err)
	}
	return nil
}

// ListNetNS returns the named namespaces whose names start with prefix.
func ListNetNS(prefix string) ([]string, error) {
	ents, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// NetNSPids returns the PIDs of the processes inside the namespace.
func NetNSPids(ctx context.Context, name string) []int {
	out, err := Run(ctx, "", "ip", "netns", "pids", name)
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(out) {
		var pid int
		if _, err := fmt.Sscanf(f, "%d", &pid); err == nil && pid > 1 && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Run runs a command, inside the named namespace unless ns is empty, and
// returns its standard output. The error carries standard error.
func Run(ctx context.Context, ns string, name string, args ...string) (string, error) {
	cmd := Command(ctx, ns, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Command returns a command that runs inside the named namespace (through
// `ip netns exec`, which execs it: the PID is the command's own).
func Command(ctx context.Context, ns string, name string, args ...string) *exec.Cmd {
	if ns == "" {
		return exec.CommandContext(ctx, name, args...)
	}
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// InNetNS runs fn with the calling goroutine's OS thread switched into the
// named namespace. Sockets fn creates stay bound to that namespace after it
// returns; goroutines fn starts do not run in it. The thread is discarded
// (left locked, so it exits with the goroutine) if it cannot be switched
// back.
func InNetNS(name string, fn func() error) error {
	target, err := os.Open(NetNSPath(name))
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", name, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	// A fresh goroutine: if switching back fails, its thread dies with it.
	go func() {
		runtime.LockOSThread()
		self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open current namespace: %w", err)
			return
		}
		defer self.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter namespace %s: %w", name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("leave namespace %s: %w", name, err))
			return // thread stays locked and is destroyed
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
