package oci

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testTree is a small tree whose file comes from a host file in dir.
func testTree(t *testing.T, dir string) *Tree {
	t.Helper()
	src := filepath.Join(dir, "hello")
	if err := os.WriteFile(src, []byte("#!/bin/sh\necho hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tr := NewTree()
	tr.File("/usr/local/bin/hello", 0o755, src)
	tr.File("/usr/local/bin/hello2", 0o755, src) // a hard link to hello
	tr.File("/usr/local/bin/hello3", 0o700, src) // another mode: a copy
	tr.Bytes("/etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n"))
	tr.Dir("/tmp", 0o1777)
	tr.Symlink("/bin/hi", "/usr/local/bin/hello")
	tr.Dir("/a-b", 0o700) // sorts after /a/... component-wise
	tr.Bytes("/a/c", 0o600, nil)
	return tr
}

func testImage(tr *Tree) Image {
	return Image{
		Refs:   []string{"example.com/test/hello:v1", "example.com/test/hello:v1.0"},
		Config: Config{Env: []string{DefaultPath}, Entrypoint: []string{"/usr/local/bin/hello"}, Cmd: []string{"-v"}},
		Root:   tr,
	}
}

func TestWriteReproducible(t *testing.T) {
	dir := t.TempDir()
	var archives [][]byte
	var digests []string
	for i := range 2 {
		tr := testTree(t, dir)
		// A later mtime and another mode on disk change nothing.
		if err := os.Chtimes(filepath.Join(dir, "hello"), time.Now(), time.Now().Add(time.Duration(i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "img.tar")
		w, err := Write(out, testImage(tr))
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		archives, digests = append(archives, data), append(digests, w.Manifest.Digest)
	}
	if digests[0] != digests[1] {
		t.Errorf("manifest digests differ: %s, %s", digests[0], digests[1])
	}
	if !bytes.Equal(archives[0], archives[1]) {
		t.Error("archives differ byte for byte")
	}
}

func TestWriteRead(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "img.tar")
	w, err := Write(out, testImage(testTree(t, dir)))
	if err != nil {
		t.Fatal(err)
	}
	a, err := Read(out)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(testImage(nil).Refs, a.Refs()); diff != "" {
		t.Errorf("refs (-want +got):\n%s", diff)
	}
	if a.Index.Manifests[0].Digest != w.Manifest.Digest || a.Index.Manifests[0].Platform == nil {
		t.Errorf("index descriptor %+v, written manifest %s", a.Index.Manifests[0], w.Manifest.Digest)
	}
	if diff := cmp.Diff(testImage(nil).Config, a.Config.Config); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if a.Config.Architecture != "amd64" || a.Config.OS != "linux" {
		t.Errorf("platform %s/%s", a.Config.OS, a.Config.Architecture)
	}
	type entry struct {
		Name     string
		Type     byte
		Mode     int64
		Linkname string
		Data     string
	}
	var got []entry
	for _, f := range a.Files {
		h := f.Header
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" || !h.ModTime.Equal(epoch()) {
			t.Errorf("%s: owner %d:%d (%q:%q), mtime %v", h.Name, h.Uid, h.Gid, h.Uname, h.Gname, h.ModTime)
		}
		got = append(got, entry{h.Name, h.Typeflag, h.Mode, h.Linkname, string(f.Data)})
	}
	want := []entry{
		{"a/", tar.TypeDir, 0o755, "", ""},
		{"a/c", tar.TypeReg, 0o600, "", ""},
		{"a-b/", tar.TypeDir, 0o700, "", ""},
		{"bin/", tar.TypeDir, 0o755, "", ""},
		{"bin/hi", tar.TypeSymlink, 0o777, "/usr/local/bin/hello", ""},
		{"etc/", tar.TypeDir, 0o755, "", ""},
		{"etc/passwd", tar.TypeReg, 0o644, "", "root:x:0:0:root:/root:/bin/sh\n"},
		{"tmp/", tar.TypeDir, 0o1777, "", ""},
		{"usr/", tar.TypeDir, 0o755, "", ""},
		{"usr/local/", tar.TypeDir, 0o755, "", ""},
		{"usr/local/bin/", tar.TypeDir, 0o755, "", ""},
		{"usr/local/bin/hello", tar.TypeReg, 0o755, "", "#!/bin/sh\necho hello\n"},
		{"usr/local/bin/hello2", tar.TypeLink, 0o755, "usr/local/bin/hello", ""},
		{"usr/local/bin/hello3", tar.TypeReg, 0o700, "", "#!/bin/sh\necho hello\n"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("layer entries (-want +got):\n%s", diff)
	}
}

func TestWriteRejects(t *testing.T) {
	dir := t.TempDir()
	fileParent := NewTree()
	fileParent.Bytes("/etc", 0o644, nil)
	fileParent.Bytes("/etc/passwd", 0o644, nil)
	missing := NewTree()
	missing.File("/bin/x", 0o755, filepath.Join(dir, "absent"))
	dirSource := NewTree()
	dirSource.File("/bin/x", 0o755, dir)
	for _, tc := range []struct {
		name string
		img  Image
		want string
	}{
		{"no reference", Image{Root: NewTree()}, "no reference"},
		{"short reference", Image{Refs: []string{"busybox:latest"}, Root: NewTree()}, "not a full reference"},
		{"untagged reference", Image{Refs: []string{"docker.io/library/busybox"}, Root: NewTree()}, "not a full reference"},
		{"file as parent", Image{Refs: []string{"example.com/x:1"}, Root: fileParent}, "parent /etc is not a directory"},
		{"missing source", Image{Refs: []string{"example.com/x:1"}, Root: missing}, "no such file"},
		{"directory source", Image{Refs: []string{"example.com/x:1"}, Root: dirSource}, "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, "img.tar")
			_, err := Write(out, tc.img)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Write: %v, want an error containing %q", err, tc.want)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("failed Write left %s behind (%v)", out, err)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}

func TestReadDetectsDamage(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "img.tar")
	w, err := Write(out, testImage(testTree(t, dir)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		damage func(files map[string][]byte)
		want   string
	}{
		{"config byte changed", func(f map[string][]byte) { f[blobPath(w.Config.Digest)][0] = ' ' }, "blob " + w.Config.Digest},
		{"layer missing", func(f map[string][]byte) { delete(f, blobPath(w.Layer.Digest)) }, "missing"},
		{"index not JSON", func(f map[string][]byte) { f["index.json"] = []byte("{") }, "index.json"},
		{"RepoTags differ", func(f map[string][]byte) {
			f["manifest.json"] = bytes.Replace(f["manifest.json"], []byte("hello:v1.0"), []byte("hello:v2"), 1)
		}, "RepoTags"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := readAll(t, out)
			if _, err := check(files); err != nil {
				t.Fatalf("undamaged archive: %v", err)
			}
			tc.damage(files)
			if _, err := check(files); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("check: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func readAll(t *testing.T, path string) map[string][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err != nil {
			return files
		}
		var b bytes.Buffer
		if _, err := b.ReadFrom(tr); err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			files[hdr.Name] = b.Bytes()
		}
	}
}
