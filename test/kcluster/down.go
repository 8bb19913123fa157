package kcluster

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/gingham-net/gingham/test/labnet"
)

// Down removes everything the cluster recorded in its state: the nodes'
// processes (everything in their network namespaces or cgroups), the
// control plane, the namespaces (with their links, routes and nftables
// tables), the host's control-plane veth (and so its routes), the per-node
// cgroups and the host mountpoints it created. The run directory is
// removed except its logs.
func Down(ctx context.Context, o Options) error {
	st, err := LoadState(o.RunDir)
	if err != nil {
		return err
	}
	prefix := st.Prefix
	if prefix == "" {
		prefix = o.Prefix
	}
	var errs []error
	for _, n := range st.Nodes {
		errs = append(errs, stopNode(ctx, prefix, n, st.PIDs["node-"+n]))
	}
	for _, name := range []string{"kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"} {
		if pid := st.PIDs[name]; pid > 0 {
			labnet.StopPID(pid, 10*time.Second)
		}
	}
	// The host's end of the veth first: deleting tor1's namespace removes
	// it too, but asynchronously, racing a later delete.
	if st.HostLink != "" {
		if _, err := labnet.Run(ctx, "", "ip", "link", "show", st.HostLink); err == nil {
			_, err := labnet.Run(ctx, "", "ip", "link", "del", st.HostLink)
			errs = append(errs, err)
		}
	}
	errs = append(errs, labnet.Teardown(ctx, prefix))
	cg := slices.Clone(st.Cgroups)
	slices.Reverse(cg)
	for _, dir := range cg {
		errs = append(errs, removeTree(dir))
	}
	dirs := slices.Clone(st.HostDirs)
	slices.Reverse(dirs)
	for _, d := range dirs {
		if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("host mountpoint %s: %w", d, err))
		}
	}
	errs = append(errs, removeRunDir(o.RunDir))
	return errors.Join(errs...)
}

// stopNode stops every process of node n: those in its network namespace
// (supervisor, containerd, shims, kubelet, kube-proxy, hostNetwork pods)
// and those in its cgroups (every container). SIGTERM, then SIGKILL.
func stopNode(ctx context.Context, prefix, node string, supervisor int) error {
	pids := func() []int {
		p := labnet.NetNSPids(ctx, prefix+node)
		for _, h := range mustHierarchies() {
			p = append(p, cgroupPIDs(filepath.Join(h, prefix+node))...)
		}
		if supervisor > 0 && labnet.Alive(supervisor) {
			p = append(p, supervisor)
		}
		slices.Sort(p)
		return slices.Compact(p)
	}
	for _, pid := range pids() {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(pids()) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	for range 3 {
		left := pids()
		if len(left) == 0 {
			return nil
		}
		for _, pid := range left {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if left := pids(); len(left) > 0 {
		return fmt.Errorf("node %s: processes %v still running after SIGKILL", node, left)
	}
	return nil
}

func mustHierarchies() []string {
	h, _ := cgroupHierarchies()
	return h
}

// removeTree removes a cgroup directory and its children, deepest first
// (cgroup directories are removed with rmdir, never recursively).
func removeTree(dir string) error {
	var all []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			all = append(all, p)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cgroup %s: %w", dir, err)
	}
	var errs []error
	for i := len(all) - 1; i >= 0; i-- {
		if err := syscall.Rmdir(all[i]); err != nil && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("cgroup %s: %w", all[i], err))
		}
	}
	return errors.Join(errs...)
}

// removeRunDir removes the run directory but its logs.
func removeRunDir(runDir string) error {
	ents, err := os.ReadDir(runDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	var errs []error
	for _, e := range ents {
		if e.Name() == "logs" {
			continue
		}
		errs = append(errs, os.RemoveAll(filepath.Join(runDir, e.Name())))
	}
	return errors.Join(errs...)
}
