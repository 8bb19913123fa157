// Command crdgen finishes the CRDs controller-gen writes: it fills the
// selector pattern (api/v1.SelectorPattern) into the CEL rules that carry
// its placeholder, so the pattern is written once, in Go, and tested there.
// It also marks the items of []*int fields listed in nullableItems as
// nullable, which controller-gen has no marker for (IPAMBlock allocations:
// null is a free slot).
//
// Usage: go run ./hack/crdgen deploy/crds
package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	v1 "github.com/gingham-net/gingham/api/v1"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: crdgen DIR")
		os.Exit(2)
	}
	files, err := filepath.Glob(filepath.Join(os.Args[1], "*.yaml"))
	if err != nil || len(files) == 0 {
		fmt.Fprintf(os.Stderr, "crdgen: no CRDs in %s\n", os.Args[1])
		os.Exit(1)
	}
	for _, f := range files {
		if err := expand(f); err != nil {
			fmt.Fprintf(os.Stderr, "crdgen: %s: %v\n", f, err)
			os.Exit(1)
		}
	}
}

func expand(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	nullable := nullableItems[filepath.Base(path)]
	if !bytes.Contains(raw, []byte(v1.SelectorPlaceholder)) && nullable == nil {
		return nil
	}
	var crd apiextv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(raw, &crd); err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	for i := range crd.Spec.Versions {
		if s := crd.Spec.Versions[i].Schema; s != nil && s.OpenAPIV3Schema != nil {
			walk(s.OpenAPIV3Schema)
			if err := markItemsNullable(s.OpenAPIV3Schema, nullable); err != nil {
				return err
			}
		}
	}
	out, err := yaml.Marshal(&crd)
	if err != nil {
		return fmt.Errorf("marshal: %w", err)
	}
	out = append([]byte("---\n"), out...)
	return os.WriteFile(path, out, 0o644)
}

func walk(s *apiextv1.JSONSchemaProps) {
	for i := range s.XValidations {
		s.XValidations[i].Rule = v1.ExpandSelectorPlaceholder(s.XValidations[i].Rule)
	}
	for k, p := range s.Properties {
		walk(&p)
		s.Properties[k] = p
	}
	if s.Items != nil && s.Items.Schema != nil {
		walk(s.Items.Schema)
	}
}

// nullableItems lists, per CRD file, the property paths of arrays whose
// items may be null.
var nullableItems = map[string][][]string{
	"gingham.dev_ipamblocks.yaml": {{"spec", "allocations"}},
}

func markItemsNullable(root *apiextv1.JSONSchemaProps, paths [][]string) error {
	for _, path := range paths {
		if err := setItemsNullable(root, path); err != nil {
			return fmt.Errorf("nullable items at %v: %w", path, err)
		}
	}
	return nil
}

// setItemsNullable follows path down the properties (copying each map value
// and storing it back) and marks the last one's items nullable.
func setItemsNullable(s *apiextv1.JSONSchemaProps, path []string) error {
	p, ok := s.Properties[path[0]]
	if !ok {
		return fmt.Errorf("no property %s", path[0])
	}
	if len(path) == 1 {
		if p.Items == nil || p.Items.Schema == nil {
			return fmt.Errorf("property %s is not an array", path[0])
		}
		p.Items.Schema.Nullable = true
	} else if err := setItemsNullable(&p, path[1:]); err != nil {
		return err
	}
	s.Properties[path[0]] = p
	return nil
}
