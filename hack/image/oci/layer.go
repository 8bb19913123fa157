package oci

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"time"
)

// EpochSeconds is the modification time of every entry and the image's
// creation time, in Unix seconds: a fixed value keeps digests reproducible.
const EpochSeconds = 0

// epoch is EpochSeconds as a time.
func epoch() time.Time { return time.Unix(EpochSeconds, 0).UTC() }

// Layer describes a written layer blob.
type Layer struct {
	Digest string // sha256 of the gzip'd tar (the blob)
	Size   int64  // size of the blob
	DiffID string // sha256 of the uncompressed tar
}

// WriteLayer writes t to w as a gzip'd tar with sorted entries, epoch
// mtimes and uid/gid 0, and returns its digests.
func WriteLayer(w io.Writer, t *Tree) (Layer, error) {
	paths, err := t.Paths()
	if err != nil {
		return Layer{}, err
	}
	blob := &countingHash{h: sha256.New()}
	zw, err := gzip.NewWriterLevel(io.MultiWriter(w, blob), gzip.DefaultCompression)
	if err != nil {
		return Layer{}, fmt.Errorf("start gzip: %w", err)
	}
	diff := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(zw, diff))
	// Files read from the same host file with the same mode are written
	// once; later paths are hard links to the first.
	type fileKey struct {
		source string
		mode   int64
	}
	written := map[fileKey]string{}
	for _, p := range paths {
		e := t.entry(p)
		if e.Kind == File && e.Source != "" {
			if first, ok := written[fileKey{e.Source, e.Mode}]; ok {
				e = Entry{Kind: hardlink, Mode: e.Mode, Target: first}
			} else {
				written[fileKey{e.Source, e.Mode}] = p
			}
		}
		if err := writeEntry(tw, p, e); err != nil {
			return Layer{}, err
		}
	}
	if err := tw.Close(); err != nil {
		return Layer{}, fmt.Errorf("finish layer tar: %w", err)
	}
	if err := zw.Close(); err != nil {
		return Layer{}, fmt.Errorf("finish layer gzip: %w", err)
	}
	return Layer{Digest: digestOf(blob.h), Size: blob.n, DiffID: digestOf(diff)}, nil
}

func writeEntry(tw *tar.Writer, p string, e Entry) error {
	hdr := &tar.Header{Name: p[1:], Mode: e.Mode, ModTime: epoch()}
	var content io.Reader
	switch e.Kind {
	case Dir:
		hdr.Typeflag, hdr.Name = tar.TypeDir, hdr.Name+"/"
	case Symlink:
		hdr.Typeflag, hdr.Mode, hdr.Linkname = tar.TypeSymlink, 0o777, e.Target
	case hardlink:
		hdr.Typeflag, hdr.Linkname = tar.TypeLink, e.Target[1:]
	case File:
		hdr.Typeflag = tar.TypeReg
		if e.Source == "" {
			hdr.Size, content = int64(len(e.Data)), bytes.NewReader(e.Data)
			break
		}
		f, err := os.Open(e.Source)
		if err != nil {
			return fmt.Errorf("layer file %s: %w", p, err)
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return fmt.Errorf("layer file %s: %w", p, err)
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("layer file %s: source %s is not a regular file", p, e.Source)
		}
		hdr.Size, content = st.Size(), f
	default:
		return fmt.Errorf("layer entry %s: unknown kind %d", p, e.Kind)
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("layer entry %s: %w", p, err)
	}
	if content == nil {
		return nil
	}
	// CopyN: a source that grows while it is read must not overrun the
	// size the header promised.
	if _, err := io.CopyN(tw, content, hdr.Size); err != nil {
		return fmt.Errorf("layer file %s from %q: %w", p, e.Source, err)
	}
	return nil
}
