package images

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gingham-net/gingham/hack/image/oci"
)

// Inputs are where the images' files come from.
type Inputs struct {
	// Repo is the repository root (deploy/image-layout and the files it
	// names with repo:).
	Repo string
	// Bin holds make build's and make tools' binaries (gingham-node,
	// agnhost, coredns).
	Bin string
	// Kubernetes is the k8s.io/kubernetes module's source (see
	// KubernetesSource): pause.c, agnhost's porter certificates, the e2e
	// image manifest.
	Kubernetes string
	// Version is the gingham image's tag.
	Version string
	// Work is a scratch directory (the compiled pause binary).
	Work string
}

// Spec is an image to write as bin/images/<Name>.tar.
type Spec struct {
	Name string
	oci.Image
}

// All returns every image: gingham, pause, busybox, agnhost, and coredns
// when bin/coredns exists.
func All(ctx context.Context, in Inputs) ([]Spec, error) {
	refs, err := E2ERefs(in.Kubernetes)
	if err != nil {
		return nil, err
	}
	var specs []Spec
	for _, build := range []func() (Spec, error){
		func() (Spec, error) { return Gingham(ctx, in) },
		func() (Spec, error) { return Pause(ctx, in, refs.Pause) },
		func() (Spec, error) { return Busybox(ctx, refs.Busybox) },
		func() (Spec, error) { return Agnhost(ctx, in, refs.Agnhost) },
	} {
		s, err := build()
		if err != nil {
			return nil, err
		}
		specs = append(specs, s)
	}
	if _, err := os.Stat(filepath.Join(in.Bin, "coredns")); err == nil {
		s, err := CoreDNS(in)
		if err != nil {
			return nil, err
		}
		specs = append(specs, s)
	}
	return specs, nil
}

// needFile fails with a hint when a required input file is missing.
func needFile(image, p, hint string) error {
	st, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("%s image: %w (%s)", image, err, hint)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s image: %s is not a regular file", image, p)
	}
	return nil
}
