// Command image builds gingham's container images as OCI image-layout
// archives, with no registry, no container engine and no base image (see
// package images for what each holds), one bin/images/<name>.tar per image,
// for `ctr -n k8s.io images import`.
//
// Usage (make image runs it after make tools and make build):
//
//	go run ./hack/image -version $(git describe --tags --always --dirty)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/gingham-net/gingham/hack/image/images"
	"github.com/gingham-net/gingham/hack/image/oci"
)

func main() {
	var in images.Inputs
	var out, tools string
	flag.StringVar(&in.Repo, "repo", ".", "repository root")
	flag.StringVar(&in.Bin, "bin", "bin", "directory of make build's and make tools' binaries")
	flag.StringVar(&in.Version, "version", "", "tag of the gingham image (git describe --tags --always --dirty)")
	flag.StringVar(&in.Kubernetes, "kubernetes", "", "k8s.io/kubernetes source (default: the version -tools requires, from the module cache)")
	flag.StringVar(&tools, "tools", "hack/tools", "the tools module that pins k8s.io/kubernetes")
	flag.StringVar(&out, "out", "bin/images", "directory the archives are written to")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, in, tools, out); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, in images.Inputs, tools, out string) error {
	if in.Kubernetes == "" {
		dir, err := images.KubernetesSource(ctx, tools)
		if err != nil {
			return err
		}
		in.Kubernetes = dir
	}
	work, err := os.MkdirTemp("", "gingham-image-")
	if err != nil {
		return fmt.Errorf("scratch directory: %w", err)
	}
	defer os.RemoveAll(work)
	in.Work = work
	specs, err := images.All(ctx, in)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	for _, s := range specs {
		dst := filepath.Join(out, s.Name+".tar")
		w, err := oci.Write(dst, s.Image)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f MB\t%s\n", dst, w.Manifest.Digest[:19], float64(w.Layer.Size)/1e6, strings.Join(s.Refs, " "))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("print images: %w", err)
	}
	return nil
}
