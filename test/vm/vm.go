// Package vm boots Debian's stock kernel (which has ipip, unlike the
// development hosts) in qemu with software emulation, from an initramfs it
// builds itself, and runs a guest program there as /init. The IPIP test
// (TestVMIPIPModes) is the only user; its guest is ./guest.
package vm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// Modules are the kernel modules the guest loads, by name; their
// dependencies (modules.dep) are added and ordered before them.
// crc32c_generic comes first: libcrc32c (needed by nf_tables) asks the
// crypto API for crc32c at load time, and the VM has no modprobe to load it
// on demand (a softdep, not in modules.dep).
var Modules = []string{"crc32c_generic", "veth", "bridge", "nf_tables", "ipip"}

// Kernel is a bootable kernel with its modules.
type Kernel struct {
	Release string // e.g. 6.1.0-56-amd64
	Image   string // /boot/vmlinuz-<release>
	Modules string // /lib/modules/<release>
}

// FindKernel returns the newest /boot/vmlinuz-* whose modules directory has
// ipip.ko.
func FindKernel() (Kernel, error) {
	imgs, _ := filepath.Glob("/boot/vmlinuz-*")
	sort.Sort(sort.Reverse(sort.StringSlice(imgs)))
	for _, img := range imgs {
		rel := strings.TrimPrefix(filepath.Base(img), "vmlinuz-")
		k := Kernel{Release: rel, Image: img, Modules: filepath.Join("/lib/modules", rel)}
		if _, err := os.Stat(filepath.Join(k.Modules, "kernel/net/ipv4/ipip.ko")); err == nil {
			return k, nil
		}
	}
	return Kernel{}, errors.New("find kernel: no /boot/vmlinuz-* with ipip.ko in its modules (install linux-image-amd64)")
}

// ModuleOrder resolves names to module paths (relative to k.Modules) with
// every dependency before its user.
func (k Kernel) ModuleOrder(names []string) ([]string, error) {
	f, err := os.Open(filepath.Join(k.Modules, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("read modules.dep: %w", err)
	}
	defer f.Close()
	deps := map[string][]string{}
	byName := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		mod, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		deps[mod] = strings.Fields(rest)
		name := strings.TrimSuffix(filepath.Base(mod), ".ko")
		byName[strings.ReplaceAll(name, "-", "_")] = mod
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read modules.dep: %w", err)
	}
	var out []string
	seen := map[string]bool{}
	var visit func(string)
	visit = func(m string) {
		if seen[m] {
			return
		}
		seen[m] = true
		d := deps[m]
		for i := len(d) - 1; i >= 0; i-- { // modules.dep lists the deepest last
			visit(d[i])
		}
		out = append(out, m)
	}
	for _, n := range names {
		m, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("module %s: not built as a module of %s (built in, or missing)", n, k.Release)
		}
		visit(m)
	}
	return out, nil
}

// File is an extra file of the initramfs: Src copied to Dst (a path inside
// the image, without the leading slash), or, when Link is set, Dst a
// symbolic link to Link.
type File struct {
	Src, Dst, Link string
}

// BuildInitramfs writes an uncompressed newc cpio to out holding init as
// /init, busybox as /bin/busybox, the modules in load order (listed in
// /modules.order), /dev/console and the extra files. Needs root for the
// device node.
func (k Kernel) BuildInitramfs(out, init, busybox string, modules []string, extra ...File) error {
	stage, err := os.MkdirTemp(filepath.Dir(out), "initramfs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	for _, d := range []string{"bin", "dev", "proc", "sys", "run", "tmp", "modules"} {
		if err := os.MkdirAll(filepath.Join(stage, d), 0o755); err != nil {
			return err
		}
	}
	if err := syscall.Mknod(filepath.Join(stage, "dev/console"), syscall.S_IFCHR|0o600, 5<<8|1); err != nil {
		return fmt.Errorf("mknod /dev/console: %w", err)
	}
	copies := [][2]string{{init, "init"}, {busybox, "bin/busybox"}}
	var order []string
	for _, m := range modules {
		dst := "modules/" + filepath.Base(m)
		copies = append(copies, [2]string{filepath.Join(k.Modules, m), dst})
		order = append(order, "/"+dst)
	}
	for _, f := range extra {
		if f.Link == "" {
			copies = append(copies, [2]string{f.Src, f.Dst})
		}
	}
	for _, c := range copies {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(stage, c[1])), 0o755); err != nil {
			return err
		}
		if err := copyFile(c[0], filepath.Join(stage, c[1])); err != nil {
			return err
		}
	}
	for _, f := range extra {
		if f.Link != "" {
			if err := os.Symlink(f.Link, filepath.Join(stage, f.Dst)); err != nil {
				return fmt.Errorf("initramfs link %s: %w", f.Dst, err)
			}
		}
	}
	if err := os.Symlink("busybox", filepath.Join(stage, "bin/sh")); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(stage, "modules.order"), []byte(strings.Join(order, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command("sh", "-c", "find . | LC_ALL=C sort | cpio --quiet -o -H newc")
	cmd.Dir, cmd.Stdout = stage, f
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("cpio: %w: %s", err, stderr.String())
	}
	return f.Close()
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, st.Mode().Perm()|0o400)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}

// Boot runs qemu (software emulation: KVM hangs on these hosts) with the
// serial console on console, until the guest powers off or ctx ends; qemu
// is then killed by its PID. The VM has 1 GiB, one CPU and no network.
func Boot(ctx context.Context, k Kernel, initrd string, console io.Writer) error {
	return BootWith(ctx, k, initrd, console, BootOptions{})
}

// BootOptions change the VM Boot runs.
type BootOptions struct {
	MemoryMiB int // 1024 when 0
	CPUs      int // 1 when 0
	// UserNet gives the guest a virtio NIC on qemu's user-mode network
	// (guest 10.0.2.15/24; 10.0.2.2 is the host's loopback). The guest
	// needs the virtio_pci and virtio_net modules.
	UserNet bool
}

// BootWith is Boot with options.
func BootWith(ctx context.Context, k Kernel, initrd string, console io.Writer, o BootOptions) error {
	mem, cpus := max(o.MemoryMiB, 1024), max(o.CPUs, 1)
	args := []string{"-nographic", "-no-reboot", "-m", fmt.Sprint(mem), "-smp", fmt.Sprint(cpus)}
	if o.UserNet {
		args = append(args, "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0")
	} else {
		args = append(args, "-net", "none")
	}
	cmdline := "console=ttyS0 panic=-1 quiet"
	if os.Getenv("GINGHAM_VM_VERBOSE") == "1" {
		cmdline = "console=ttyS0 panic=-1"
	}
	args = append(args, "-kernel", k.Image, "-initrd", initrd, "-append", cmdline)
	cmd := exec.Command("qemu-system-x86_64", args...)
	cmd.Stdout, cmd.Stderr = console, console
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start qemu: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("qemu: %w", err)
		}
		return nil
	case <-ctx.Done():
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return fmt.Errorf("qemu (pid %d) killed: %w", cmd.Process.Pid, ctx.Err())
	}
}

// WithSharedObjects returns f plus the shared libraries its binary (f.Src)
// needs, as `ldd` lists them, each at its own path inside the image, so a
// dynamically linked host binary (BIRD) runs in the guest.
func WithSharedObjects(f File) ([]File, error) {
	out, err := exec.Command("ldd", f.Src).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", f.Src, err)
	}
	files := []File{f}
	for _, line := range strings.Split(string(out), "\n") {
		// "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
		// "/lib64/ld-linux-x86-64.so.2 (0x...)"; the vDSO has no path.
		fields := strings.Fields(line)
		for i, x := range fields {
			if strings.HasPrefix(x, "/") && (i == 0 || fields[i-1] == "=>") {
				files = append(files, File{Src: x, Dst: strings.TrimPrefix(x, "/")})
			}
		}
	}
	if len(files) == 1 {
		return nil, fmt.Errorf("ldd %s: no shared objects listed (static? %q)", f.Src, out)
	}
	return files, nil
}
