package vm

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// vmTimeout bounds the whole boot and scenario (software emulation on a
// loaded machine; a quiet run takes well under a minute).
const vmTimeout = 6 * time.Minute

// need skips (or, under GINGHAM_TEST_REQUIRE=1, fails) when the VM cannot run.
func need(t *testing.T, ok bool, why string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("GINGHAM_TEST_REQUIRE") == "1" {
		t.Fatalf("VM test cannot run: %s (GINGHAM_TEST_REQUIRE=1; run make tools)", why)
	}
	t.Skipf("VM test cannot run: %s", why)
}

// prereqs skips (or fails, see need) unless the VM can run here, and
// returns the kernel to boot.
func prereqs(t *testing.T) Kernel {
	t.Helper()
	if testing.Short() {
		t.Skip("boots a VM")
	}
	_, err := exec.LookPath("qemu-system-x86_64")
	need(t, err == nil, "qemu-system-x86_64 not installed")
	need(t, os.Geteuid() == 0, "needs root (the kernel image is readable by root only)")
	_, err = exec.LookPath("cpio")
	need(t, err == nil, "cpio not installed")
	_, err = os.Stat("/bin/busybox")
	need(t, err == nil, "busybox-static not installed")
	k, err := FindKernel()
	need(t, err == nil, "no kernel image with ipip modules")
	return k
}

// goBuild builds pkg (relative to this directory) statically into out.
func goBuild(t *testing.T, out, pkg string, flags ...string) {
	t.Helper()
	args := append([]string{"build", "-trimpath"}, flags...)
	build := exec.Command("go", append(args, "-o", out, pkg)...)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, b)
	}
}

// TestVMIPIPModes proves the IPIP data path on a kernel that has ipip: the
// guest (./guest) builds two racks of nodes with pods in network namespaces
// and drives the ipip package and felix/routetable through ipipMode Always,
// CrossSubnet and Never, plus a forged IPIP packet from a non-node.
func TestVMIPIPModes(t *testing.T) {
	k := prereqs(t)
	dir := t.TempDir()
	start := time.Now()
	guest := filepath.Join(dir, "guest")
	goBuild(t, guest, "./guest")
	mods, err := k.ModuleOrder(Modules)
	if err != nil {
		t.Fatal(err)
	}
	initrd := filepath.Join(dir, "initrd.cpio")
	if err := k.BuildInitramfs(initrd, guest, "/bin/busybox", mods); err != nil {
		t.Fatal(err)
	}
	t.Logf("kernel %s, modules %v, guest built in %s", k.Release, mods, time.Since(start).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), vmTimeout)
	defer cancel()
	runGuest(t, func(console io.Writer) error { return Boot(ctx, k, initrd, console) })
}

// runGuest boots the VM through boot and turns the guest's console lines
// into test results: every FAIL is an error, and the run must end with
// DONE and at least one PASS.
func runGuest(t *testing.T, boot func(console io.Writer) error) {
	t.Helper()
	pr, pw := io.Pipe()
	bootErr := make(chan error, 1)
	start := time.Now()
	go func() {
		err := boot(pw)
		pw.Close()
		bootErr <- err
	}()
	verbose := os.Getenv("GINGHAM_VM_VERBOSE") == "1" // every console line, no "quiet"
	var console []string
	pass, fail, done := 0, 0, ""
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		console = append(console, line)
		if verbose {
			t.Log("console: " + line)
		}
		i := strings.Index(line, "GINGHAM-VM ")
		if i < 0 {
			continue
		}
		rest := line[i+len("GINGHAM-VM "):]
		t.Log(rest)
		switch {
		case strings.HasPrefix(rest, "PASS "):
			pass++
		case strings.HasPrefix(rest, "FAIL "):
			fail++
			t.Errorf("guest: %s", rest)
		case strings.HasPrefix(rest, "DONE "):
			done = rest
		}
	}
	if err := <-bootErr; err != nil {
		t.Errorf("boot: %v", err)
	}
	t.Logf("VM ran %s (boot + scenario): %d checks passed, %d failed", time.Since(start).Round(time.Millisecond), pass, fail)
	if done == "" || pass == 0 || t.Failed() {
		tail := console[max(0, len(console)-80):]
		t.Errorf("guest did not finish cleanly (%q); console tail:\n%s", done, strings.Join(tail, "\n"))
	}
}
