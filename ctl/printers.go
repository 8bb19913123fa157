package ctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/util/jsonpath"
	"sigs.k8s.io/yaml"
)

// outputFormat is a parsed -o value.
type outputFormat struct {
	Kind    string // table, wide, yaml, json, custom-columns
	Columns string // the custom-columns spec
}

func parseOutput(s string) (outputFormat, error) {
	switch s {
	case "", "ps", "table":
		return outputFormat{Kind: "table"}, nil
	case "wide", "yaml", "json":
		return outputFormat{Kind: s}, nil
	}
	if spec, ok := strings.CutPrefix(s, "custom-columns="); ok && spec != "" {
		return outputFormat{Kind: "custom-columns", Columns: spec}, nil
	}
	return outputFormat{}, fmt.Errorf("unknown output format %q: use wide, yaml, json or custom-columns=HEADER:.json.path,… (or custom-columns=NAME,CIDR,… of the wide table)", s)
}

// newTabWriter aligns columns like calicoctl (minimum width 5, padding 3).
func newTabWriter(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 5, 1, 3, ' ', 0) }

// typed converts an object read as unstructured into its Go type.
func typed(res *resource, u *unstructured.Unstructured) (runtime.Object, error) {
	o := res.New()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, o); err != nil {
		return nil, fmt.Errorf("decode %s %q: %w", res.Kind, u.GetName(), err)
	}
	return o, nil
}

// printTable prints objects of one kind as a table. An empty list prints
// the header only; the caller says "No … found" on stderr.
func printTable(w io.Writer, res *resource, objs []*unstructured.Unstructured, cols []column) error {
	tw := newTabWriter(w)
	headers := make([]string, len(cols))
	for i, c := range cols {
		headers[i] = c.Header
	}
	fmt.Fprintln(tw, strings.Join(headers, "\t"))
	for _, u := range objs {
		o, err := typed(res, u)
		if err != nil {
			return err
		}
		row := make([]string, len(cols))
		for i, c := range cols {
			row[i] = c.Value(o)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// customColumns parses "H1:.path,H2:.path" (kubectl) or "NAME,CIDR" (names
// of the wide table's columns, as calicoctl accepts).
func customColumns(res *resource, spec string) ([]column, error) {
	var cols []column
	for _, part := range strings.Split(spec, ",") {
		header, path, ok := strings.Cut(part, ":")
		if !ok {
			c, found := findColumn(res, part)
			if !found {
				var known []string
				for _, c := range res.Wide {
					known = append(known, c.Header)
				}
				return nil, fmt.Errorf("custom-columns: %s has no column %q (columns: %s; or give HEADER:.json.path)", res.Kind, part, strings.Join(known, ", "))
			}
			cols = append(cols, c)
			continue
		}
		jp := jsonpath.New(header).AllowMissingKeys(true)
		expr := path
		if !strings.HasPrefix(expr, "{") {
			expr = "{" + expr + "}"
		}
		if err := jp.Parse(expr); err != nil {
			return nil, fmt.Errorf("custom-columns: column %s: bad JSONPath %q: %w", header, path, err)
		}
		cols = append(cols, column{strings.ToUpper(header), func(o runtime.Object) string {
			m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
			if err != nil {
				return "<error>"
			}
			var b bytes.Buffer
			if err := jp.Execute(&b, m); err != nil || b.Len() == 0 {
				return "<none>"
			}
			return b.String()
		}})
	}
	return cols, nil
}

func findColumn(res *resource, name string) (column, bool) {
	for _, c := range res.Wide {
		if strings.EqualFold(c.Header, strings.TrimSpace(name)) {
			return c, true
		}
	}
	return column{}, false
}

// clean drops server bookkeeping nobody edits (managedFields) before an
// object is shown as YAML or JSON.
func clean(u *unstructured.Unstructured) map[string]any {
	c := u.DeepCopy()
	unstructured.RemoveNestedField(c.Object, "metadata", "managedFields")
	return c.Object
}

// printDocument prints objects as YAML or JSON: one object bare, several as
// a list of their kind (kind: List when kinds are mixed), as calicoctl does.
func printDocument(w io.Writer, format string, objs []*unstructured.Unstructured, listKind, resourceVersion string, single bool) error {
	var doc any
	if single && len(objs) == 1 {
		doc = clean(objs[0])
	} else {
		items := make([]any, 0, len(objs))
		for _, u := range objs {
			items = append(items, clean(u))
		}
		meta := map[string]any{}
		if resourceVersion != "" {
			meta["resourceVersion"] = resourceVersion
		}
		doc = map[string]any{"apiVersion": listAPIVersion(listKind), "kind": listKind, "metadata": meta, "items": items}
	}
	switch format {
	case "json":
		b, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			return fmt.Errorf("render JSON: %w", err)
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	default:
		b, err := yaml.Marshal(doc)
		if err != nil {
			return fmt.Errorf("render YAML: %w", err)
		}
		_, err = w.Write(b)
		return err
	}
}

func listAPIVersion(listKind string) string {
	if listKind == "List" {
		return "v1"
	}
	return "gingham.dev/v1"
}

func sortStrings(s []string) { sort.Strings(s) }

// sortByName orders objects by name, for stable output.
func sortByName(objs []*unstructured.Unstructured) {
	sort.SliceStable(objs, func(i, j int) bool { return objs[i].GetName() < objs[j].GetName() })
}
