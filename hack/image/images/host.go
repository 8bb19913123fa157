package images

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/gingham-net/gingham/hack/image/oci"
)

// hostBusybox is Debian busybox-static's binary.
const hostBusybox = "/bin/busybox"

// account is a line of /etc/passwd and one of /etc/group (either may be
// empty: a group with no user of its own).
type account struct{ passwd, group string }

// busyboxBase adds the static busybox with an applet symlink in /bin for
// each applet it lists, /etc/passwd and /etc/group with baseAccounts and
// extra, /root and a sticky /tmp. Every image has root and nobody.
func busyboxBase(ctx context.Context, t *oci.Tree, extra ...account) error {
	out, err := exec.CommandContext(ctx, hostBusybox, "--list").Output()
	if err != nil {
		return fmt.Errorf("list busybox applets (Debian busybox-static): %w", err)
	}
	t.File("/bin/busybox", 0o755, hostBusybox)
	for _, a := range strings.Fields(string(out)) {
		if a == "busybox" || a == "linuxrc" || strings.Contains(a, "/") {
			continue
		}
		t.Symlink("/bin/"+a, "busybox")
	}
	var passwd, group strings.Builder
	accounts := append([]account{
		{"root:x:0:0:root:/root:/bin/sh", "root:x:0:"},
		{"nobody:x:65534:65534:nobody:/nonexistent:/bin/false", "nogroup:x:65534:"},
	}, extra...)
	for _, a := range accounts {
		for _, l := range []struct {
			b    *strings.Builder
			line string
		}{{&passwd, a.passwd}, {&group, a.group}} {
			if l.line != "" {
				l.b.WriteString(l.line + "\n")
			}
		}
	}
	t.Bytes("/etc/passwd", 0o644, []byte(passwd.String()))
	t.Bytes("/etc/group", 0o644, []byte(group.String()))
	t.Dir("/root", 0o700)
	t.Dir("/tmp", 0o1777)
	return nil
}

// withLibs adds host binaries at their own paths with the shared libraries
// and dynamic loader ldd lists for them. A library goes to the path ldd
// names (e.g. /lib64/ld-linux-x86-64.so.2) with the content of the file it
// resolves to.
func withLibs(ctx context.Context, t *oci.Tree, bins ...string) error {
	for _, b := range bins {
		t.File(b, 0o755, b)
		libs, err := ldd(ctx, b)
		if err != nil {
			return err
		}
		for _, l := range libs {
			src, err := filepath.EvalSymlinks(l)
			if err != nil {
				return fmt.Errorf("library %s of %s: %w", l, b, err)
			}
			t.File(l, 0o755, src)
		}
	}
	return nil
}

func ldd(ctx context.Context, bin string) ([]string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ldd", bin)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if out := stdout.String() + stderr.String(); strings.Contains(out, "not a dynamic executable") || strings.Contains(out, "statically linked") {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w: %s", bin, err, strings.TrimSpace(stderr.String()))
	}
	libs, err := parseLDD(stdout.String())
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", bin, err)
	}
	return libs, nil
}

// parseLDD returns the library paths of ldd's output: the right side of
// "name => /path (addr)" and the loader's "/path (addr)"; the vDSO, which
// has no file, is left out.
func parseLDD(out string) ([]string, error) {
	var libs []string
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if name, p, ok := strings.Cut(line, "=>"); ok {
			p = strings.TrimSpace(p)
			if strings.HasPrefix(p, "not found") {
				return nil, fmt.Errorf("library %s not found", strings.TrimSpace(name))
			}
			line = p
		}
		p, _, _ := strings.Cut(line, " ")
		if !filepath.IsAbs(p) {
			continue // linux-vdso.so.1 (0x...)
		}
		libs = append(libs, p)
	}
	if len(libs) == 0 {
		return nil, errors.New("no library in the output of a dynamic executable")
	}
	return libs, nil
}
