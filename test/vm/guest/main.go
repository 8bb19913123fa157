// Command guest is the program the VM test (package test/vm) boots as /init
// of a throwaway initramfs under Debian's stock kernel, which has ipip. It
// mounts the pseudo file systems, loads the kernel modules listed in
// /modules.order, builds a two-rack topology of network namespaces and runs
// the IPIP scenario against the real ipip and felix/routetable packages,
// printing one line per check to the serial console:
//
//	GINGHAM-VM PASS <check>: <detail>
//	GINGHAM-VM FAIL <check>: <detail>
//	GINGHAM-VM DONE pass=<n> fail=<m>
//
// When the initramfs holds /agents/config.json (TestVMAgentsIPIPModes), it
// runs the agents scenario instead (agents.go): the real gingham-node
// agents and CNI plugins against the host's API server.
//
// It then powers the VM off. It is not meant to run anywhere else: it
// refuses to start unless it is PID 1.
package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Prefix starts every line the host test parses.
const Prefix = "GINGHAM-VM"

// results prints check outcomes as they happen.
type results struct {
	pass, fail int
}

func (r *results) check(name string, err error, detail string, args ...any) {
	d := fmt.Sprintf(detail, args...)
	if err != nil {
		r.fail++
		fmt.Printf("%s FAIL %s: %v %s\n", Prefix, name, err, d)
		return
	}
	r.pass++
	fmt.Printf("%s PASS %s: %s\n", Prefix, name, d)
}

func main() {
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "guest: runs only as /init of the VM test's initramfs")
		os.Exit(2)
	}
	start := time.Now()
	r := &results{}
	if err := boot(); err != nil {
		r.check("boot", err, "")
	} else if _, err := os.Stat(agentsConfigPath); err == nil {
		runAgents(r) // the host test put the agents scenario's files in
	} else {
		run(r)
	}
	fmt.Printf("%s DONE pass=%d fail=%d elapsed=%s\n", Prefix, r.pass, r.fail, time.Since(start).Round(time.Millisecond))
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	os.Exit(0) // PID 1 exiting panics the kernel; panic=-1 and -no-reboot end qemu anyway
}

// boot mounts what the scenario needs and loads the modules in order.
func boot() error {
	for _, m := range []struct{ src, dst, fs string }{
		{"proc", "/proc", "proc"}, {"sys", "/sys", "sysfs"}, {"dev", "/dev", "devtmpfs"},
		{"run", "/run", "tmpfs"}, {"tmp", "/tmp", "tmpfs"},
	} {
		if err := os.MkdirAll(m.dst, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.src, m.dst, m.fs, 0, ""); err != nil && err != unix.EBUSY {
			return fmt.Errorf("mount %s: %w", m.dst, err)
		}
	}
	f, err := os.Open("/modules.order")
	if err != nil {
		return fmt.Errorf("read module list: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.TrimSpace(sc.Text())
		if p == "" {
			continue
		}
		if err := insmod(p); err != nil {
			return err
		}
	}
	return sc.Err()
}

func insmod(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("load module %s: %w", path, err)
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && err != unix.EEXIST {
		return fmt.Errorf("load module %s: %w", filepath.Base(path), err)
	}
	return nil
}
