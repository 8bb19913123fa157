package ctl

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// sourced is an object read from a file, with where it came from.
type sourced struct {
	Obj    *unstructured.Unstructured
	Source string // file name and document number, for messages
}

// readObjects reads every object of the files named by -f: a file, a
// directory (its .yaml, .yml and .json files, in name order) or "-" for
// stdin. Documents may be YAML or JSON, several per file; a List (or any
// *List kind) contributes its items.
func readObjects(paths []string, stdin io.Reader) ([]sourced, error) {
	var out []sourced
	for _, p := range paths {
		if p == "-" {
			objs, err := decodeAll("<stdin>", stdin)
			if err != nil {
				return nil, err
			}
			out = append(out, objs...)
			continue
		}
		files, err := expand(p)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			objs, err := decodeFile(f)
			if err != nil {
				return nil, err
			}
			out = append(out, objs...)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no objects found in %s", strings.Join(paths, ", "))
	}
	return out, nil
}

func expand(p string) ([]string, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	if !st.IsDir() {
		return []string{p}, nil
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", p, err)
	}
	var files []string
	for _, e := range entries {
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".yaml", ".yml", ".json":
			if !e.IsDir() {
				files = append(files, filepath.Join(p, e.Name()))
			}
		}
	}
	sort.Strings(files)
	if len(files) == 0 {
		return nil, fmt.Errorf("directory %s has no .yaml, .yml or .json files", p)
	}
	return files, nil
}

func decodeFile(name string) ([]sourced, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	defer f.Close()
	return decodeAll(name, f)
}

// decodeAll decodes every document of r.
func decodeAll(name string, r io.Reader) ([]sourced, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	var out []sourced
	for doc := 1; ; doc++ {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("parse %s (document %d): %w", name, doc, err)
		}
		if len(m) == 0 {
			continue
		}
		src := fmt.Sprintf("%s (document %d)", name, doc)
		u := &unstructured.Unstructured{Object: m}
		if u.GetKind() == "" {
			return nil, fmt.Errorf("parse %s: object has no kind", src)
		}
		if !u.IsList() {
			out = append(out, sourced{Obj: u, Source: src})
			continue
		}
		if err := u.EachListItem(func(o runtime.Object) error {
			item, ok := o.(*unstructured.Unstructured)
			if !ok {
				return fmt.Errorf("list item is %T", o)
			}
			out = append(out, sourced{Obj: item, Source: src})
			return nil
		}); err != nil {
			return nil, fmt.Errorf("parse %s: %w", src, err)
		}
	}
}
