package images

import (
	"context"
	"debug/buildinfo"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/gingham-net/gingham/hack/image/oci"
)

// Pause is the sandbox image: Kubernetes' pause.c compiled static with gcc
// (it reaps zombies and exits on SIGTERM), run as 65535:65535 like
// upstream's.
func Pause(ctx context.Context, in Inputs, refs []string) (Spec, error) {
	src := filepath.Join(in.Kubernetes, "build", "pause", "linux", "pause.c")
	if err := needFile("pause", src, "the k8s.io/kubernetes source"); err != nil {
		return Spec{}, err
	}
	bin := filepath.Join(in.Work, "pause")
	tag := refs[0][strings.LastIndex(refs[0], ":")+1:]
	for _, args := range [][]string{
		{"gcc", "-Os", "-static", "-DVERSION=v" + tag + "-gingham", "-o", bin, src},
		{"strip", bin},
	} {
		if out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput(); err != nil {
			return Spec{}, fmt.Errorf("pause image: %s: %w: %s", strings.Join(args, " "), err, out)
		}
	}
	t := oci.NewTree()
	t.File("/pause", 0o755, bin)
	return Spec{Name: "pause", Image: oci.Image{
		Refs:   refs,
		Config: oci.Config{User: "65535:65535", Env: []string{oci.DefaultPath}, Entrypoint: []string{"/pause"}},
		Root:   t,
	}}, nil
}

// Busybox is the e2e busybox image: busybox's applets, root and nobody, a
// sticky /tmp; it runs sh unless told otherwise.
func Busybox(ctx context.Context, refs []string) (Spec, error) {
	t := oci.NewTree()
	if err := busyboxBase(ctx, t); err != nil {
		return Spec{}, fmt.Errorf("busybox image: %w", err)
	}
	return Spec{Name: "busybox", Image: oci.Image{
		Refs:   refs,
		Config: oci.Config{Env: []string{oci.DefaultPath}, Cmd: []string{"sh"}},
		Root:   t,
	}}, nil
}

// Agnhost is the e2e suite's test image, as its Dockerfile in the
// Kubernetes source builds it, from make tools' agnhost and Debian's
// packages instead of Alpine's:
//   - busybox applets; real curl and nc (netcat-openbsd), bash, with their
//     libraries and loader;
//   - /bin/sh is dash: Debian's busybox ash runs its own applets ahead of
//     PATH, so `sh -c "... | nc -u ..."` got busybox's nc, which has no -u;
//   - /localhost.crt and .key (porter's TLS ports), /uploads (netexec),
//     /agnhost-2 (entrypoint-tester), the user and group of the
//     SupplementalGroups test, and /coredns when bin/coredns exists (DNS
//     tests run it from this image).
//
// Not included: dig, iperf, ss, socat and the fake registry's content.
func Agnhost(ctx context.Context, in Inputs, refs []string) (Spec, error) {
	agnhost := filepath.Join(in.Bin, "agnhost")
	if err := needFile("agnhost", agnhost, "make tools builds it"); err != nil {
		return Spec{}, err
	}
	t := oci.NewTree()
	err := busyboxBase(ctx, t,
		account{"user-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh", "user-defined-in-image:x:1000:"},
		account{"", "group-defined-in-image:x:50000:user-defined-in-image"},
	)
	if err != nil {
		return Spec{}, fmt.Errorf("agnhost image: %w", err)
	}
	if err := withLibs(ctx, t, "/usr/bin/curl", "/usr/bin/nc.openbsd", "/bin/dash", "/bin/bash"); err != nil {
		return Spec{}, fmt.Errorf("agnhost image: %w", err)
	}
	t.Symlink("/bin/sh", "dash")
	t.Symlink("/bin/nc", "/usr/bin/nc.openbsd")
	t.File("/agnhost", 0o755, agnhost)
	t.Symlink("/agnhost-2", "agnhost")
	porter := filepath.Join(in.Kubernetes, "test", "images", "agnhost", "porter")
	for _, f := range []string{"localhost.crt", "localhost.key"} {
		if err := needFile("agnhost", filepath.Join(porter, f), "the k8s.io/kubernetes source"); err != nil {
			return Spec{}, err
		}
		t.File("/"+f, 0o644, filepath.Join(porter, f))
	}
	if coredns := filepath.Join(in.Bin, "coredns"); needFile("agnhost", coredns, "") == nil {
		t.File("/coredns", 0o755, coredns)
	}
	t.Bytes("/etc/nsswitch.conf", 0o644, []byte("hosts: files dns\n"))
	t.Dir("/uploads", 0o755)
	t.Dir("/home/user-defined-in-image", 0o755)
	return Spec{Name: "agnhost", Image: oci.Image{
		Refs:   refs,
		Config: oci.Config{Env: []string{oci.DefaultPath}, Entrypoint: []string{"/agnhost"}, Cmd: []string{"pause"}},
		Root:   t,
	}}, nil
}

// CoreDNS is registry.k8s.io/coredns/coredns:<version>, the version
// bin/coredns was built at (its Go build info).
func CoreDNS(in Inputs) (Spec, error) {
	bin := filepath.Join(in.Bin, "coredns")
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return Spec{}, fmt.Errorf("coredns image: %w", err)
	}
	v := info.Main.Version
	if !tagPattern.MatchString(v) {
		return Spec{}, fmt.Errorf("coredns image: %s was built at version %q, not a release", bin, v)
	}
	t := oci.NewTree()
	t.File("/coredns", 0o755, bin)
	return Spec{Name: "coredns", Image: oci.Image{
		Refs:   []string{"registry.k8s.io/coredns/coredns:" + v},
		Config: oci.Config{Env: []string{oci.DefaultPath}, Entrypoint: []string{"/coredns"}},
		Root:   t,
	}}, nil
}
