package images

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"

	"github.com/gingham-net/gingham/hack/image/layout"
	"github.com/gingham-net/gingham/hack/image/oci"
)

// GinghamRepository is where the gingham image is published.
const GinghamRepository = "ghcr.io/gingham-net/gingham"

// LayoutFile is the gingham image's layout, from the repository root.
const LayoutFile = "deploy/image-layout"

// tagPattern is a valid image tag (git describe output is one).
var tagPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// Gingham is ghcr.io/gingham-net/gingham:<in.Version>: busybox and the files
// of deploy/image-layout.
func Gingham(ctx context.Context, in Inputs) (Spec, error) {
	if !tagPattern.MatchString(in.Version) || in.Version == "latest" {
		return Spec{}, fmt.Errorf("gingham image: version %q is not an image tag other than latest", in.Version)
	}
	l, err := layout.Load(filepath.Join(in.Repo, LayoutFile))
	if err != nil {
		return Spec{}, fmt.Errorf("gingham image: %w", err)
	}
	t := oci.NewTree()
	if l.Base != layout.BaseBusybox {
		return Spec{}, fmt.Errorf("gingham image: base %q is not supported", l.Base)
	}
	if err := busyboxBase(ctx, t); err != nil {
		return Spec{}, fmt.Errorf("gingham image: %w", err)
	}
	for _, f := range l.Files {
		src, hint := hostSource(in, f)
		if err := needFile("gingham", src, hint); err != nil {
			return Spec{}, err
		}
		t.File(f.Path, f.Mode, src)
	}
	return Spec{Name: "gingham", Image: oci.Image{
		Refs:   []string{GinghamRepository + ":" + in.Version},
		Config: oci.Config{Env: []string{oci.DefaultPath}, Entrypoint: l.Entrypoint},
		Root:   t,
	}}, nil
}

// hostSource is where a layout file is read from, and what makes it.
func hostSource(in Inputs, f layout.File) (src, hint string) {
	switch f.Kind {
	case layout.SourceBin:
		return filepath.Join(in.Bin, f.Source), "make build writes it"
	case layout.SourceRepo:
		return filepath.Join(in.Repo, f.Source), "a file of the repository"
	default:
		return f.Source, "a Debian package's file: make tools installs it"
	}
}
