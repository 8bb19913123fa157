package layout

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
)

// Bases the layout may start from.
const (
	// BaseBusybox is a static busybox with its applets in /bin, /etc/passwd,
	// /etc/group and a sticky /tmp: Debian's busybox-static for make image,
	// the busybox image for the Dockerfile.
	BaseBusybox = "busybox"
)

// Source kinds: where a file comes from.
const (
	// SourceBin is a binary of make build (bin/NAME), the Dockerfile's
	// build stage output.
	SourceBin = "bin"
	// SourceRepo is a file of this repository, by its path from the root.
	SourceRepo = "repo"
	// SourceHost is a file of a host (Debian) package, by absolute path; the
	// Dockerfile fetches it in a builder stage.
	SourceHost = "host"
)

// Layout is a parsed image-layout file.
type Layout struct {
	Base       string
	Entrypoint []string
	Files      []File
}

// File is one file of the image.
type File struct {
	Path   string // absolute path in the image
	Mode   int64  // permission bits
	Kind   string // SourceBin, SourceRepo or SourceHost
	Source string // bin name, repository path or host path
}

// Load reads and parses the layout file at p.
func Load(p string) (Layout, error) {
	f, err := os.Open(p)
	if err != nil {
		return Layout{}, fmt.Errorf("load image layout: %w", err)
	}
	defer f.Close()
	l, err := Parse(f)
	if err != nil {
		return Layout{}, fmt.Errorf("load image layout %s: %w", p, err)
	}
	return l, nil
}

// Parse parses an image-layout file: lines "base NAME", "entrypoint ARG...",
// "file PATH MODE KIND:SOURCE"; '#' starts a comment.
func Parse(r io.Reader) (Layout, error) {
	var l Layout
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if err := l.parseLine(f, seen); err != nil {
			return Layout{}, fmt.Errorf("line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return Layout{}, fmt.Errorf("read: %w", err)
	}
	return l, l.validate(seen)
}

func (l *Layout) parseLine(f []string, seen map[string]bool) error {
	switch f[0] {
	case "base":
		if len(f) != 2 || f[1] != BaseBusybox {
			return fmt.Errorf("base: want %q, got %q", "base "+BaseBusybox, strings.Join(f, " "))
		}
		l.Base = f[1]
	case "entrypoint":
		if len(f) < 2 {
			return fmt.Errorf("entrypoint: no command")
		}
		l.Entrypoint = f[1:]
	case "file":
		file, err := parseFile(f[1:])
		if err != nil {
			return err
		}
		if seen[file.Path] {
			return fmt.Errorf("file %s listed twice", file.Path)
		}
		seen[file.Path] = true
		l.Files = append(l.Files, file)
	default:
		return fmt.Errorf("unknown directive %q", f[0])
	}
	return nil
}

func parseFile(f []string) (File, error) {
	if len(f) != 3 {
		return File{}, fmt.Errorf("file: want PATH MODE KIND:SOURCE, got %q", strings.Join(f, " "))
	}
	p := f[0]
	if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
		return File{}, fmt.Errorf("file %s: not a clean absolute path", p)
	}
	mode, err := strconv.ParseInt(f[1], 8, 64)
	if err != nil || mode&^0o7777 != 0 {
		return File{}, fmt.Errorf("file %s: mode %q is not octal permission bits", p, f[1])
	}
	kind, src, ok := strings.Cut(f[2], ":")
	if !ok || src == "" {
		return File{}, fmt.Errorf("file %s: source %q is not KIND:SOURCE", p, f[2])
	}
	switch kind {
	case SourceBin:
		if strings.Contains(src, "/") {
			return File{}, fmt.Errorf("file %s: bin source %q is not a plain name", p, src)
		}
	case SourceRepo:
		if path.IsAbs(src) || strings.HasPrefix(path.Clean(src), "..") {
			return File{}, fmt.Errorf("file %s: repo source %q is not inside the repository", p, src)
		}
	case SourceHost:
		if !path.IsAbs(src) {
			return File{}, fmt.Errorf("file %s: host source %q is not absolute", p, src)
		}
	default:
		return File{}, fmt.Errorf("file %s: unknown source kind %q", p, kind)
	}
	return File{Path: p, Mode: mode, Kind: kind, Source: src}, nil
}

func (l *Layout) validate(files map[string]bool) error {
	switch {
	case l.Base == "":
		return fmt.Errorf("no base")
	case len(l.Entrypoint) == 0:
		return fmt.Errorf("no entrypoint")
	case !files[l.Entrypoint[0]]:
		return fmt.Errorf("entrypoint %s is not a file of the layout", l.Entrypoint[0])
	}
	return nil
}
