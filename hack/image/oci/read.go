package oci

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Archive is an image archive read back and checked by Read.
type Archive struct {
	Layout OCILayout
	Index  Index
	Docker []DockerManifest
	// Manifest and Config are those of the single manifest the index
	// names (every reference must point at the same one).
	Manifest Manifest
	Config   ImageConfig
	// Files are the layer's entries in archive order; Data holds a
	// regular file's content.
	Files []LayerFile
}

// LayerFile is one entry of the layer.
type LayerFile struct {
	Header tar.Header
	Data   []byte
}

// Refs are the references index.json names the image by (the
// io.containerd.image.name annotations).
func (a *Archive) Refs() []string {
	var refs []string
	for _, d := range a.Index.Manifests {
		refs = append(refs, d.Annotations[AnnotationContainerdName])
	}
	return refs
}

// Read reads the archive at path and checks it: valid JSON, every blob's
// digest and size as its descriptors say, one manifest with one layer, and
// the config's diff_id matching the uncompressed layer.
func Read(path string) (*Archive, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read archive: %w", err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read archive %s: %w", path, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("read archive %s: %s: %w", path, hdr.Name, err)
		}
		files[hdr.Name] = data
	}
	a, err := check(files)
	if err != nil {
		return nil, fmt.Errorf("archive %s: %w", path, err)
	}
	return a, nil
}

func check(files map[string][]byte) (*Archive, error) {
	a := &Archive{}
	for name, v := range map[string]any{"oci-layout": &a.Layout, "index.json": &a.Index, "manifest.json": &a.Docker} {
		if err := decode(files, name, v); err != nil {
			return nil, err
		}
	}
	if a.Layout.Version != "1.0.0" || a.Index.SchemaVersion != 2 || a.Index.MediaType != MediaTypeIndex {
		return nil, fmt.Errorf("unexpected oci-layout %+v or index header", a.Layout)
	}
	if len(a.Index.Manifests) == 0 {
		return nil, errors.New("index.json names no manifest")
	}
	mdesc := a.Index.Manifests[0]
	for _, d := range a.Index.Manifests {
		if d.Digest != mdesc.Digest || d.MediaType != MediaTypeManifest {
			return nil, fmt.Errorf("index.json: manifests differ (%s, %s)", d.Digest, mdesc.Digest)
		}
		if r := d.Annotations[AnnotationContainerdName]; r == "" || r != d.Annotations[AnnotationRefName] {
			return nil, fmt.Errorf("index.json: manifest annotations %v do not name the reference twice", d.Annotations)
		}
	}
	if err := decodeBlob(files, mdesc, &a.Manifest); err != nil {
		return nil, err
	}
	if len(a.Manifest.Layers) != 1 {
		return nil, fmt.Errorf("manifest has %d layers, want 1", len(a.Manifest.Layers))
	}
	if err := decodeBlob(files, a.Manifest.Config, &a.Config); err != nil {
		return nil, err
	}
	layer, err := blob(files, a.Manifest.Layers[0])
	if err != nil {
		return nil, err
	}
	if a.Files, err = readLayer(layer, a.Config.RootFS.DiffIDs); err != nil {
		return nil, err
	}
	if err := checkDocker(a); err != nil {
		return nil, err
	}
	return a, nil
}

// checkDocker checks manifest.json against index.json.
func checkDocker(a *Archive) error {
	if len(a.Docker) != 1 {
		return fmt.Errorf("manifest.json has %d entries, want 1", len(a.Docker))
	}
	d := a.Docker[0]
	if d.Config != blobPath(a.Manifest.Config.Digest) || len(d.Layers) != 1 || d.Layers[0] != blobPath(a.Manifest.Layers[0].Digest) {
		return fmt.Errorf("manifest.json %+v does not match the OCI manifest", d)
	}
	if strings.Join(d.RepoTags, " ") != strings.Join(a.Refs(), " ") {
		return fmt.Errorf("manifest.json RepoTags %v, index.json %v", d.RepoTags, a.Refs())
	}
	return nil
}

func readLayer(layer []byte, diffIDs []string) ([]LayerFile, error) {
	zr, err := gzip.NewReader(bytes.NewReader(layer))
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	if sum := sha256.Sum256(raw); len(diffIDs) != 1 || diffIDs[0] != fmt.Sprintf("sha256:%x", sum) {
		return nil, fmt.Errorf("config diff_ids %v, layer is sha256:%x", diffIDs, sum)
	}
	var out []LayerFile
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("layer tar: %w", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("layer tar %s: %w", hdr.Name, err)
		}
		out = append(out, LayerFile{Header: *hdr, Data: data})
	}
}

func decode(files map[string][]byte, name string, v any) error {
	data, ok := files[name]
	if !ok {
		return fmt.Errorf("no %s", name)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func decodeBlob(files map[string][]byte, d Descriptor, v any) error {
	data, err := blob(files, d)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	return nil
}

// blob returns the blob d points at, checking its size and digest.
func blob(files map[string][]byte, d Descriptor) ([]byte, error) {
	data, ok := files[blobPath(d.Digest)]
	if !ok {
		return nil, fmt.Errorf("blob %s missing", d.Digest)
	}
	if sum := sha256.Sum256(data); int64(len(data)) != d.Size || d.Digest != fmt.Sprintf("sha256:%x", sum) {
		return nil, fmt.Errorf("blob %s: size %d digest sha256:%x, descriptor says size %d", d.Digest, len(data), sum, d.Size)
	}
	return data, nil
}
