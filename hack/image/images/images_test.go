package images

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gingham-net/gingham/hack/image/layout"
	"github.com/gingham-net/gingham/hack/image/oci"
	"github.com/gingham-net/gingham/internal/testenv"
)

// repo is the repository root, from this package's directory.
var repo = filepath.Join("..", "..", "..")

// needHost ends the test unless the host files the images are made of are
// there (make tools installs their Debian packages): skipped, or failed
// under GINGHAM_TEST_REQUIRE=1.
func needHost(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			if testenv.Required() {
				t.Fatalf("host file missing (make tools installs it): %v", err)
			}
			t.Skipf("host file missing (make tools installs it): %v", err)
		}
	}
}

// fakeInputs has fake gingham, portmap and agnhost binaries (shell scripts with
// distinct content) and a fake Kubernetes source with porter's
// certificates; Repo is the real repository.
func fakeInputs(t *testing.T) Inputs {
	t.Helper()
	dir := t.TempDir()
	in := Inputs{Repo: repo, Bin: filepath.Join(dir, "bin"), Kubernetes: filepath.Join(dir, "k8s"), Version: "v9.9.9-test", Work: t.TempDir()}
	for _, b := range []string{"gingham-node", "ginghamctl", "gingham-cni", "portmap", "agnhost"} {
		writeFile(t, filepath.Join(in.Bin, b), 0o755, "#!/bin/sh\necho "+b+"\n")
	}
	for _, f := range []string{"localhost.crt", "localhost.key"} {
		writeFile(t, filepath.Join(in.Kubernetes, "test/images/agnhost/porter", f), 0o644, f+"\n")
	}
	return in
}

func writeFile(t *testing.T, p string, mode os.FileMode, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// writeRead writes s to a temporary archive and reads it back, checked.
func writeRead(t *testing.T, s Spec) *oci.Archive {
	t.Helper()
	out := filepath.Join(t.TempDir(), s.Name+".tar")
	if _, err := oci.Write(out, s.Image); err != nil {
		t.Fatal(err)
	}
	a, err := oci.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// files maps each layer path ("/bin/sh") to its entry.
func files(a *oci.Archive) map[string]oci.LayerFile {
	m := map[string]oci.LayerFile{}
	for _, f := range a.Files {
		m["/"+strings.TrimSuffix(f.Header.Name, "/")] = f
	}
	return m
}

// TestGinghamLayout checks that the gingham image holds exactly the files of
// deploy/image-layout, with their modes and content, on the busybox base.
func TestGinghamLayout(t *testing.T) {
	t.Parallel()
	needHost(t, hostBusybox)
	ctx := context.Background()
	in := fakeInputs(t)
	s, err := Gingham(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	a := writeRead(t, s)
	if diff := cmp.Diff([]string{"ghcr.io/gingham-net/gingham:v9.9.9-test"}, a.Refs()); diff != "" {
		t.Errorf("refs (-want +got):\n%s", diff)
	}
	l, err := layout.Load(filepath.Join(repo, LayoutFile))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(l.Entrypoint, a.Config.Config.Entrypoint); diff != "" {
		t.Errorf("entrypoint (-want +got):\n%s", diff)
	}
	// The base alone, built the same way, names every other path.
	base := oci.NewTree()
	if err := busyboxBase(ctx, base); err != nil {
		t.Fatal(err)
	}
	want, err := base.Paths()
	if err != nil {
		t.Fatal(err)
	}
	got := files(a)
	for _, f := range l.Files {
		want = append(want, f.Path)
		for d := path.Dir(f.Path); d != "/"; d = path.Dir(d) {
			want = append(want, d)
		}
		checkFile(t, got, f.Path, f.Mode, hostSourceOf(t, in, f))
	}
	slices.Sort(want)
	gotPaths := make([]string, 0, len(got))
	for p := range got {
		gotPaths = append(gotPaths, p)
	}
	slices.Sort(gotPaths)
	if diff := cmp.Diff(slices.Compact(want), gotPaths); diff != "" {
		t.Errorf("image paths: want the busybox base and the layout's files (-want +got):\n%s", diff)
	}
	if sh := got["/bin/sh"]; sh.Header.Typeflag != tar.TypeSymlink || sh.Header.Linkname != "busybox" {
		t.Errorf("/bin/sh is %+v, want a symlink to busybox (install-cni's shell)", sh.Header)
	}
}

func hostSourceOf(t *testing.T, in Inputs, f layout.File) string {
	t.Helper()
	src, _ := hostSource(in, f)
	return src
}

// checkFile checks that p is an executable (or not) regular file, or a hard
// link to one, with the content of the host file src.
func checkFile(t *testing.T, got map[string]oci.LayerFile, p string, mode int64, src string) {
	t.Helper()
	f, ok := got[p]
	if !ok {
		t.Errorf("%s missing", p)
		return
	}
	if f.Header.Typeflag == tar.TypeLink {
		f = got["/"+f.Header.Linkname]
	}
	if f.Header.Typeflag != tar.TypeReg || f.Header.Mode != mode {
		t.Errorf("%s: type %c mode %o, want a regular file with mode %o", p, f.Header.Typeflag, f.Header.Mode, mode)
	}
	want, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.Data, want) {
		t.Errorf("%s: content differs from %s", p, src)
	}
}

func TestGinghamRejectsVersion(t *testing.T) {
	for _, v := range []string{"", "latest", "v1 2", "-v1", strings.Repeat("v", 129)} {
		in := fakeInputs(t)
		in.Version = v
		if _, err := Gingham(context.Background(), in); err == nil || !strings.Contains(err.Error(), "not an image tag") {
			t.Errorf("version %q: %v, want an error", v, err)
		}
	}
}

func TestGinghamMissingBinary(t *testing.T) {
	needHost(t, hostBusybox)
	in := fakeInputs(t)
	if err := os.Remove(filepath.Join(in.Bin, "ginghamctl")); err != nil {
		t.Fatal(err)
	}
	_, err := Gingham(context.Background(), in)
	if err == nil || !strings.Contains(err.Error(), "ginghamctl") || !strings.Contains(err.Error(), "make build") {
		t.Fatalf("Gingham: %v, want an error naming ginghamctl and make build", err)
	}
}

// TestAgnhost checks what the e2e specs need of the agnhost image: curl and
// nc with every library and the loader, dash as /bin/sh, the porter
// certificates and the image's user and group.
func TestAgnhost(t *testing.T) {
	t.Parallel()
	needHost(t, hostBusybox, "/usr/bin/curl", "/usr/bin/nc.openbsd", "/bin/dash", "/bin/bash")
	ctx := context.Background()
	in := fakeInputs(t)
	s, err := Agnhost(ctx, in, []string{"registry.k8s.io/e2e-test-images/agnhost:2.66.1"})
	if err != nil {
		t.Fatal(err)
	}
	a := writeRead(t, s)
	got := files(a)
	for _, bin := range []string{"/usr/bin/curl", "/usr/bin/nc.openbsd", "/bin/dash", "/bin/bash"} {
		checkFile(t, got, bin, 0o755, bin)
		libs, err := ldd(ctx, bin)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(libs, func(l string) bool { return strings.Contains(l, "ld-linux") }) {
			t.Errorf("ldd %s lists no loader: %v", bin, libs)
		}
		for _, l := range libs {
			src, err := filepath.EvalSymlinks(l)
			if err != nil {
				t.Fatal(err)
			}
			checkFile(t, got, l, 0o755, src)
		}
	}
	checkFile(t, got, "/agnhost", 0o755, filepath.Join(in.Bin, "agnhost"))
	checkFile(t, got, "/localhost.key", 0o644, filepath.Join(in.Kubernetes, "test/images/agnhost/porter/localhost.key"))
	for p, target := range map[string]string{"/bin/sh": "dash", "/bin/nc": "/usr/bin/nc.openbsd", "/agnhost-2": "agnhost", "/bin/ls": "busybox"} {
		if h := got[p].Header; h.Typeflag != tar.TypeSymlink || h.Linkname != target {
			t.Errorf("%s: %+v, want a symlink to %s", p, h, target)
		}
	}
	for p, line := range map[string]string{
		"/etc/passwd": "user-defined-in-image:x:1000:1000:",
		"/etc/group":  "group-defined-in-image:x:50000:user-defined-in-image\n",
	} {
		if !strings.Contains(string(got[p].Data), line) || strings.Contains(string(got[p].Data), "\n\n") {
			t.Errorf("%s:\n%s\nwant a line %q and no empty line", p, got[p].Data, line)
		}
	}
	if _, ok := got["/uploads"]; !ok {
		t.Error("/uploads missing (netexec's upload directory)")
	}
	want := oci.Config{Env: []string{oci.DefaultPath}, Entrypoint: []string{"/agnhost"}, Cmd: []string{"pause"}}
	if diff := cmp.Diff(want, a.Config.Config); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
}

// TestReproducible builds every image twice, pause compiled each time, and
// compares their digests.
func TestReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every image twice")
	}
	t.Parallel()
	needHost(t, hostBusybox, "/usr/bin/curl", "/usr/bin/nc.openbsd", "/bin/dash", "/bin/bash", "/usr/bin/gcc")
	ctx := context.Background()
	in := fakeInputs(t)
	k8s, err := KubernetesSource(ctx, filepath.Join(repo, "hack", "tools"))
	if err != nil {
		t.Fatal(err)
	}
	in.Kubernetes = k8s
	var digests [2][]string
	for i := range digests {
		in.Work = t.TempDir()
		specs, err := All(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range specs {
			w, err := oci.Write(filepath.Join(t.TempDir(), s.Name+".tar"), s.Image)
			if err != nil {
				t.Fatal(err)
			}
			digests[i] = append(digests[i], s.Name+" "+w.Manifest.Digest)
		}
	}
	if diff := cmp.Diff(digests[0], digests[1]); diff != "" {
		t.Errorf("second build differs (-first +second):\n%s", diff)
	}
	if len(digests[0]) < 4 {
		t.Errorf("built %v, want gingham, pause, busybox and agnhost", digests[0])
	}
	// The pause binary runs (static: no loader needed) and reports the tag.
	out, err := exec.CommandContext(ctx, filepath.Join(in.Work, "pause"), "-v").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "pause.c v3.") {
		t.Errorf("pause -v: %v: %s", err, out)
	}
}
