package images

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gingham-net/gingham/hack/image/oci"
	"github.com/gingham-net/gingham/internal/netns/netnstest"
	"github.com/gingham-net/gingham/internal/testenv"
)

// TestPrivilegedContainerdImport imports archives into a throwaway
// containerd (its own root, state and socket in a temporary directory,
// stopped by PID at the end) the way the cluster's nodes do, `ctr -n
// k8s.io images import` with unpacking, and checks that `ctr images ls`
// names every reference.
func TestPrivilegedContainerdImport(t *testing.T) {
	netnstest.Privileged(t)
	needHost(t, hostBusybox)
	containerd, ctr := tool(t, "containerd"), tool(t, "ctr")
	ctx := context.Background()
	in := fakeInputs(t)
	gingham, err := Gingham(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	busybox, err := Busybox(ctx, []string{"registry.k8s.io/e2e-test-images/busybox:1.37.0-2", "docker.io/library/busybox:latest"})
	if err != nil {
		t.Fatal(err)
	}
	address := startContainerd(t, containerd)
	var want []string
	for _, s := range []Spec{gingham, busybox} {
		archive := filepath.Join(t.TempDir(), s.Name+".tar")
		if _, err := oci.Write(archive, s.Image); err != nil {
			t.Fatal(err)
		}
		runCtr(t, ctr, address, "images", "import", archive)
		want = append(want, s.Refs...)
	}
	listed := strings.Fields(runCtr(t, ctr, address, "images", "ls", "-q"))
	for _, ref := range want {
		if !slices.Contains(listed, ref) {
			t.Errorf("ctr images ls -q does not list %s: %v", ref, listed)
		}
	}
	// Unpacked: one committed snapshot per image (each has one layer).
	snaps := runCtr(t, ctr, address, "snapshots", "ls")
	if n := strings.Count(snaps, "Committed"); n != 2 {
		t.Errorf("%d committed snapshots, want 2:\n%s", n, snaps)
	}
}

// tool finds a binary of make tools in bin/, or else on PATH; when it is
// missing the test is skipped, or fails under GINGHAM_TEST_REQUIRE=1.
func tool(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(repo, "bin", name)
	if _, err := os.Stat(p); err == nil {
		abs, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if testenv.Required() {
		t.Fatalf("%s not in bin/ or on PATH (make tools builds it)", name)
	}
	t.Skipf("%s not in bin/ or on PATH (make tools builds it)", name)
	return ""
}

// startContainerd runs containerd with everything under a temporary
// directory and returns its socket; cleanup kills it by PID and detaches any
// mount left under the directory.
func startContainerd(t *testing.T, containerd string) string {
	t.Helper()
	dir := t.TempDir()
	address := filepath.Join(dir, "containerd.sock")
	config := fmt.Sprintf(`version = 3
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime", "io.containerd.cri.v1.images", "io.containerd.nri.v1.nri"]
[grpc]
  address = %[3]q
[plugins."io.containerd.internal.v1.opt"]
  path = %[4]q
[plugins."io.containerd.image-verifier.v1.bindir"]
  bin_dir = %[5]q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), address, filepath.Join(dir, "opt"), filepath.Join(dir, "verifier"))
	writeFile(t, filepath.Join(dir, "config.toml"), 0o644, config)
	log, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(containerd, "--config", filepath.Join(dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		log.Close()
		unmountUnder(t, dir)
		if t.Failed() {
			data, _ := os.ReadFile(log.Name())
			t.Logf("containerd log:\n%s", data)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(address); err == nil {
			return address
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd did not create %s in 30s", address)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// unmountUnder detaches the mounts below dir, deepest first.
func unmountUnder(t *testing.T, dir string) {
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		t.Errorf("list mounts: %v", err)
		return
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 1 && strings.HasPrefix(fields[1], dir+"/") {
			mounts = append(mounts, fields[1])
		}
	}
	slices.Reverse(mounts)
	for _, m := range mounts {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", m, err)
		}
	}
}

func runCtr(t *testing.T, ctr, address string, args ...string) string {
	t.Helper()
	cmd := exec.Command(ctr, append([]string{"--address", address, "--namespace", "k8s.io"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ctr %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
