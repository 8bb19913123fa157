package oci

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// Kind is the type of a Tree entry.
type Kind int

// The entry kinds.
const (
	File Kind = iota
	Dir
	Symlink
	// hardlink is how WriteLayer writes a second path of one host file;
	// Target is the first path.
	hardlink
)

// Entry is one path of a Tree.
type Entry struct {
	Kind Kind
	// Mode holds the permission bits as tar stores them (0o1777 for a
	// sticky /tmp). Ignored for symlinks.
	Mode int64
	// Source is the host file a File's content is read from (symlinks
	// followed) when the layer is written; Data is used when it is empty.
	Source string
	Data   []byte
	// Target is a Symlink's target, written as is.
	Target string
}

// Tree is the file system of an image's single layer, keyed by absolute
// path. The zero value is not usable; use NewTree.
type Tree struct {
	entries map[string]Entry
}

// NewTree returns an empty Tree.
func NewTree() *Tree { return &Tree{entries: map[string]Entry{}} }

// File adds (or replaces) a regular file whose content is read from the
// host path source.
func (t *Tree) File(p string, mode int64, source string) {
	t.put(p, Entry{Kind: File, Mode: mode, Source: source})
}

// Bytes adds (or replaces) a regular file holding data.
func (t *Tree) Bytes(p string, mode int64, data []byte) {
	t.put(p, Entry{Kind: File, Mode: mode, Data: data})
}

// Dir adds (or replaces) a directory.
func (t *Tree) Dir(p string, mode int64) { t.put(p, Entry{Kind: Dir, Mode: mode}) }

// Symlink adds (or replaces) a symbolic link to target.
func (t *Tree) Symlink(p, target string) { t.put(p, Entry{Kind: Symlink, Target: target}) }

func (t *Tree) put(p string, e Entry) { t.entries[path.Clean(p)] = e }

// Paths lists every path of the Tree with the parent directories it
// implies, sorted so that a directory comes before what it holds. It fails
// when a path is not absolute or when a parent is not a directory.
func (t *Tree) Paths() ([]string, error) {
	all := map[string]bool{}
	for p := range t.entries {
		if !path.IsAbs(p) || p == "/" {
			return nil, fmt.Errorf("tree path %q: not an absolute path below /", p)
		}
		all[p] = true
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if e, ok := t.entries[d]; ok && e.Kind != Dir {
				return nil, fmt.Errorf("tree path %q: parent %s is not a directory", p, d)
			}
			all[d] = true
		}
	}
	paths := make([]string, 0, len(all))
	for p := range all {
		paths = append(paths, p)
	}
	// Compare component by component: a plain string sort would put
	// "/a-b" between "/a" and "/a/c".
	sort.Slice(paths, func(i, j int) bool {
		return strings.ReplaceAll(paths[i], "/", "\x00") < strings.ReplaceAll(paths[j], "/", "\x00")
	})
	return paths, nil
}

// entry returns the entry at p, or the implied 0755 directory.
func (t *Tree) entry(p string) Entry {
	if e, ok := t.entries[p]; ok {
		return e
	}
	return Entry{Kind: Dir, Mode: 0o755}
}
