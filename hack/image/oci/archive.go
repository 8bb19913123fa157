package oci

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// DefaultPath is the PATH of every image.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Image is what Write turns into an archive.
type Image struct {
	// Refs are the full references the image is known by, e.g.
	// registry.k8s.io/pause:3.10.2; at least one.
	Refs   []string
	Config Config
	Root   *Tree
}

// Written describes an archive Write produced.
type Written struct {
	Manifest Descriptor // the manifest every reference points at
	Config   Descriptor
	Layer    Descriptor
}

// refPattern is a full reference with a registry host, a path and a tag.
var refPattern = regexp.MustCompile(`^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)+:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// Write writes img as an OCI image-layout tar archive at dst.
func Write(dst string, img Image) (_ Written, err error) {
	if len(img.Refs) == 0 {
		return Written{}, errors.New("write image: no reference")
	}
	for _, r := range img.Refs {
		if !refPattern.MatchString(r) {
			return Written{}, fmt.Errorf("write image: %q is not a full reference (registry/path:tag)", r)
		}
	}
	dir := filepath.Dir(dst)
	layerFile, err := os.CreateTemp(dir, ".layer-*")
	if err != nil {
		return Written{}, fmt.Errorf("write image %s: %w", img.Refs[0], err)
	}
	defer func() {
		layerFile.Close()
		os.Remove(layerFile.Name())
	}()
	layer, err := WriteLayer(layerFile, img.Root)
	if err != nil {
		return Written{}, fmt.Errorf("write image %s: %w", img.Refs[0], err)
	}
	if _, err := layerFile.Seek(0, io.SeekStart); err != nil {
		return Written{}, fmt.Errorf("write image %s: rewind layer: %w", img.Refs[0], err)
	}
	b, err := newBlobs(img, layer)
	if err != nil {
		return Written{}, fmt.Errorf("write image %s: %w", img.Refs[0], err)
	}
	if err := writeArchive(dst, b, layerFile); err != nil {
		return Written{}, fmt.Errorf("write image %s: %w", img.Refs[0], err)
	}
	return Written{Manifest: b.manifest, Config: b.config, Layer: b.layer}, nil
}

// blobs are an image's JSON documents and its layer's descriptor.
type blobs struct {
	config, manifest, layer  Descriptor
	configJSON, manifestJSON []byte
	indexJSON, dockerJSON    []byte
}

func newBlobs(img Image, layer Layer) (*blobs, error) {
	created := epoch().Format(time.RFC3339)
	b := &blobs{layer: Descriptor{MediaType: MediaTypeLayer, Digest: layer.Digest, Size: layer.Size}}
	var err error
	b.configJSON, err = json.Marshal(ImageConfig{
		Created: created, Architecture: "amd64", OS: "linux",
		Config:  img.Config,
		RootFS:  RootFS{Type: "layers", DiffIDs: []string{layer.DiffID}},
		History: []History{{Created: created, CreatedBy: "gingham hack/image"}},
	})
	if err != nil {
		return nil, fmt.Errorf("encode image config: %w", err)
	}
	b.config = describe(MediaTypeConfig, b.configJSON)
	b.manifestJSON, err = json.Marshal(Manifest{SchemaVersion: 2, MediaType: MediaTypeManifest, Config: b.config, Layers: []Descriptor{b.layer}})
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	b.manifest = describe(MediaTypeManifest, b.manifestJSON)
	idx := Index{SchemaVersion: 2, MediaType: MediaTypeIndex}
	for _, r := range img.Refs {
		d := b.manifest
		d.Annotations = map[string]string{AnnotationContainerdName: r, AnnotationRefName: r}
		d.Platform = &Platform{Architecture: "amd64", OS: "linux"}
		idx.Manifests = append(idx.Manifests, d)
	}
	if b.indexJSON, err = json.Marshal(idx); err != nil {
		return nil, fmt.Errorf("encode index: %w", err)
	}
	docker := []DockerManifest{{Config: blobPath(b.config.Digest), RepoTags: img.Refs, Layers: []string{blobPath(layer.Digest)}}}
	if b.dockerJSON, err = json.Marshal(docker); err != nil {
		return nil, fmt.Errorf("encode manifest.json: %w", err)
	}
	return b, nil
}

func describe(mediaType string, data []byte) Descriptor {
	sum := sha256.Sum256(data)
	return Descriptor{MediaType: mediaType, Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(data))}
}

// blobPath is where a blob lives in an image layout.
func blobPath(digest string) string { return "blobs/sha256/" + strings.TrimPrefix(digest, "sha256:") }

// writeArchive writes the layout tar to a temporary file and renames it
// onto dst.
func writeArchive(dst string, b *blobs, layer io.Reader) (err error) {
	f, err := os.CreateTemp(filepath.Dir(dst), ".archive-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	tw := tar.NewWriter(f)
	layoutJSON, err := json.Marshal(OCILayout{Version: "1.0.0"})
	if err != nil {
		return fmt.Errorf("encode oci-layout: %w", err)
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: epoch()}); err != nil {
			return fmt.Errorf("archive %s: %w", d, err)
		}
	}
	files := []struct {
		name string
		data []byte
	}{
		{"oci-layout", layoutJSON},
		{"index.json", b.indexJSON},
		{"manifest.json", b.dockerJSON},
		{blobPath(b.config.Digest), b.configJSON},
		{blobPath(b.manifest.Digest), b.manifestJSON},
	}
	for _, file := range files {
		if err := writeFile(tw, file.name, int64(len(file.data)), bytes.NewReader(file.data)); err != nil {
			return err
		}
	}
	if err := writeFile(tw, blobPath(b.layer.Digest), b.layer.Size, layer); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("finish archive: %w", err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("archive mode: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close archive: %w", err)
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		return fmt.Errorf("install archive: %w", err)
	}
	return nil
}

func writeFile(tw *tar.Writer, name string, size int64, r io.Reader) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size, ModTime: epoch()}); err != nil {
		return fmt.Errorf("archive %s: %w", name, err)
	}
	if _, err := io.CopyN(tw, r, size); err != nil {
		return fmt.Errorf("archive %s: %w", name, err)
	}
	return nil
}
