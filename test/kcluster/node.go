package kcluster

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gingham-net/gingham/test/labnet"
)

// referencePlugins is where Debian's containernetworking-plugins puts the
// CNI reference plugins.
const referencePlugins = "/usr/lib/cni"

// copyDir copies the regular files of src into dst (mode kept).
func copyDir(src, dst string) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return fmt.Errorf("copy %s: %w", src, err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o755); err != nil {
			return fmt.Errorf("copy %s: %w", src, err)
		}
	}
	return nil
}

// cgroupV1Root is where this host mounts its cgroup hierarchies.
const cgroupV1Root = "/sys/fs/cgroup"

// startNode prepares node n's directories, configuration, cgroups and host
// mountpoints, and starts its supervisor: node.sh inside the node's network
// namespace and a new private mount namespace.
func (c *Cluster) startNode(n labnet.Node) error {
	f := c.nodeFiles(n)
	for src := range hostBinds {
		if err := os.MkdirAll(filepath.Join(f.Dir, src), 0o755); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
	}
	if err := os.MkdirAll(filepath.Join(f.Dir, "sysctl"), 0o755); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	for k, v := range fakeSysctls {
		if err := os.WriteFile(filepath.Join(f.Dir, "sysctl", strings.ReplaceAll(k, "/", "-")), []byte(v+"\n"), 0o644); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
	}
	// The node's OS provides the CNI reference plugins, as the
	// kubernetes-cni package does on kubeadm nodes: the container runtime
	// needs loopback for every pod's lo; the bridge baseline uses bridge
	// and host-local.
	if err := copyDir(referencePlugins, filepath.Join(f.Dir, "opt-cni-bin")); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	if err := os.WriteFile(filepath.Join(f.Dir, "machine-id"), []byte(hex.EncodeToString(id)+"\n"), 0o444); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	for _, t := range []string{"containerd.toml", "kubelet.yaml", "kube-proxy.yaml", "node.sh"} {
		b, err := f.render(t)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(f.Dir, t), b, 0o644); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
	}
	for _, b := range f.Binds {
		if err := c.ensureHostMountpoint(b.Dst, b.Dst == "/etc/machine-id"); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
	}
	if err := c.makeCgroups(f.CgroupRoot); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	return c.startDaemon(daemonSpec{name: "node-" + n.Name, argv: []string{
		"nsenter", "--net=" + f.NetNS, "unshare", "--mount", "--propagation", "private",
		"bash", filepath.Join(f.Dir, "node.sh")}})
}

// ensureHostMountpoint creates path (a directory, or an empty file) and its
// missing parents on the host, recording each one it created.
func (c *Cluster) ensureHostMountpoint(path string, file bool) error {
	var missing []string
	for p := path; ; p = filepath.Dir(p) {
		if _, err := os.Lstat(p); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("mountpoint %s: %w", p, err)
		}
		missing = append([]string{p}, missing...)
	}
	for i, p := range missing {
		c.st.HostDirs = append(c.st.HostDirs, p)
		if err := c.st.Save(c.O.RunDir); err != nil {
			return err
		}
		var err error
		if file && i == len(missing)-1 {
			err = os.WriteFile(p, nil, 0o444)
		} else {
			err = os.Mkdir(p, 0o755)
		}
		if err != nil {
			return fmt.Errorf("mountpoint %s: %w", p, err)
		}
	}
	return nil
}

// makeCgroups creates the node's cgroup root in every cgroup v1 hierarchy
// (the kubelet's cgroupRoot), with cpuset's cpus and mems copied from the
// parent as cpuset requires.
func (c *Cluster) makeCgroups(root string) error {
	hier, err := cgroupHierarchies()
	if err != nil {
		return err
	}
	for _, h := range hier {
		dir := filepath.Join(h, root)
		c.st.Cgroups = append(c.st.Cgroups, dir)
		if err := c.st.Save(c.O.RunDir); err != nil {
			return err
		}
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("cgroup %s: %w", dir, err)
		}
		if filepath.Base(h) == "cpuset" {
			for _, k := range []string{"cpuset.cpus", "cpuset.mems"} {
				b, err := os.ReadFile(filepath.Join(h, k))
				if err != nil {
					return fmt.Errorf("cgroup %s: %w", dir, err)
				}
				if err := os.WriteFile(filepath.Join(dir, k), b, 0o644); err != nil {
					return fmt.Errorf("cgroup %s: %w", dir, err)
				}
			}
		}
	}
	return nil
}

// cgroupHierarchies lists the cgroup v1 hierarchies (not the hybrid
// unified mount, which the kubelet does not use on a v1 host).
func cgroupHierarchies() ([]string, error) {
	ents, err := os.ReadDir(cgroupV1Root)
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && e.Name() != "unified" {
			out = append(out, filepath.Join(cgroupV1Root, e.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}
