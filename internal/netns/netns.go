// Package netns switches network namespaces safely.
//
// Invariants:
//   - A thread's namespace is only ever changed inside Do, on a goroutine
//     locked to its OS thread; the previous namespace is restored before the
//     thread is unlocked. If restoring fails the thread stays locked, so the
//     Go runtime discards it when the goroutine exits instead of reusing a
//     thread in the wrong namespace.
//   - Nothing calls setns on a long-lived goroutine: goroutines spawned inside
//     Do do not inherit the namespace (they may run on any thread).
//   - Named namespaces are created the way iproute2 does (a bind mount under
//     /run/netns), so `ip netns exec NAME` works on them.
package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// RunDir is where named namespaces are bind-mounted (as by `ip netns add`).
const RunDir = "/run/netns"

// NS is an open network namespace.
type NS struct {
	f    *os.File
	path string
}

// Open opens the namespace at path (e.g. /proc/1234/ns/net or /run/netns/x).
func Open(path string) (*NS, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", path, err)
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("statfs netns %s: %w", path, err)
	}
	if st.Type != unix.NSFS_MAGIC && st.Type != unix.PROC_SUPER_MAGIC {
		f.Close()
		return nil, fmt.Errorf("open netns %s: not a namespace file", path)
	}
	return &NS{f: f, path: path}, nil
}

// Current opens the namespace of the calling thread.
func Current() (*NS, error) {
	return Open(fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid()))
}

// Path is the file the namespace was opened from.
func (n *NS) Path() string { return n.path }

// Fd is the namespace's file descriptor, valid until Close.
func (n *NS) Fd() int { return int(n.f.Fd()) }

// Close releases the descriptor (a named namespace stays mounted).
func (n *NS) Close() error { return n.f.Close() }

// Do runs f with the calling goroutine's thread inside n, then switches back.
func (n *NS) Do(f func() error) error {
	errc := make(chan error, 1)
	// A fresh goroutine: its thread is locked for the duration, and the
	// caller's thread is never touched.
	go func() {
		runtime.LockOSThread()
		orig, err := Current()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if err := unix.Setns(n.Fd(), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns %s: %w", n.path, err)
			return
		}
		ferr := f()
		if err := unix.Setns(orig.Fd(), unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: it dies with this goroutine.
			errc <- errors.Join(ferr, fmt.Errorf("restore netns after %s: %w", n.path, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// NewNamed creates a network namespace mounted at RunDir/name and opens it.
func NewNamed(name string) (*NS, error) {
	if err := os.MkdirAll(RunDir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", RunDir, err)
	}
	// Make RunDir a shared mount point once, as iproute2 does, so the bind
	// mounts below propagate and can be unmounted cleanly.
	if err := unix.Mount("", RunDir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		if err := unix.Mount(RunDir, RunDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return nil, fmt.Errorf("bind %s: %w", RunDir, err)
		}
		if err := unix.Mount("", RunDir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
			return nil, fmt.Errorf("share %s: %w", RunDir, err)
		}
	}
	target := filepath.Join(RunDir, name)
	fd, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return nil, fmt.Errorf("create netns file %s: %w", target, err)
	}
	fd.Close()

	errc := make(chan error, 1)
	go func() {
		// This thread is never unlocked: it ends in the new namespace and is
		// thrown away when the goroutine returns.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare netns: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
		if err := unix.Mount(src, target, "none", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind netns to %s: %w", target, err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		os.Remove(target)
		return nil, err
	}
	return Open(target)
}

// DeleteNamed unmounts and removes RunDir/name. A missing namespace is not an
// error. The namespace itself lives on while anything still holds it open.
func DeleteNamed(name string) error {
	target := filepath.Join(RunDir, name)
	if err := unix.Unmount(target, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount netns %s: %w", target, err)
	}
	if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove netns %s: %w", target, err)
	}
	return nil
}
