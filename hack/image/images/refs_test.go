package images

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestE2ERefs(t *testing.T) {
	got, err := E2ERefs(filepath.Join("testdata", "k8s"))
	if err != nil {
		t.Fatal(err)
	}
	want := Refs{
		Pause: []string{"registry.k8s.io/pause:3.10.2", "registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10.1"},
		Busybox: []string{
			"registry.k8s.io/e2e-test-images/busybox:1.37.0-2",
			"docker.io/library/busybox:1.37.0-2",
			"docker.io/library/busybox:latest",
			"registry.k8s.io/e2e-test-images/busybox:1.36.1-1",
		},
		// Not agnhost:2.6 of the private registry: e2e expects it to fail.
		Agnhost: []string{"registry.k8s.io/e2e-test-images/agnhost:2.55", "registry.k8s.io/e2e-test-images/agnhost:2.66.1"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestE2ERefsRejects(t *testing.T) {
	for _, tc := range []struct{ name, manifest, want string }{
		{"no agnhost", `configs[Pause] = Config{list.GcRegistry, "pause", "3.10.2"}
		GcRegistry: "registry.k8s.io",`, "want pause, busybox and agnhost"},
		{"unknown registry", `configs[Pause] = Config{list.NewRegistry, "pause", "3.10.2"}`, "unknown registry NewRegistry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, e2eManifest), 0o644, tc.manifest)
			if _, err := E2ERefs(dir); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("E2ERefs: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if _, err := E2ERefs(t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("E2ERefs of an empty directory: %v, want not exist", err)
	}
}

func TestParseLDD(t *testing.T) {
	for _, tc := range []struct {
		name, out string
		want      []string
		err       string
	}{
		{"dynamic", "\tlinux-vdso.so.1 (0x00007fb6a4d78000)\n" +
			"\tlibcurl.so.4 => /lib/x86_64-linux-gnu/libcurl.so.4 (0x00007fb6a4c73000)\n" +
			"\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007fb6a4a72000)\n" +
			"\t/lib64/ld-linux-x86-64.so.2 (0x00007fb6a4d7a000)\n",
			[]string{"/lib/x86_64-linux-gnu/libcurl.so.4", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"}, ""},
		{"library not found", "\tlibfoo.so.1 => not found\n\t/lib64/ld-linux-x86-64.so.2 (0x0)\n", nil, "library libfoo.so.1 not found"},
		{"nothing", "\tstatically linked\n", nil, "no library"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseLDD(tc.out)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("parseLDD: %v, want an error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
