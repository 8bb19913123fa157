package ctl

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// target is what a get, delete, patch or label command acts on: a kind
// and names, or the objects named in files.
type target struct {
	Res   *resource
	Names []string
}

// targets resolves "KIND [NAME...]" or -f files into per-kind targets.
func (a *app) targets(args, files []string, needNames bool) ([]target, error) {
	if len(files) > 0 {
		if len(args) > 0 {
			return nil, fmt.Errorf("give either KIND [NAME...] or -f FILENAME, not both")
		}
		objs, err := readObjects(files, a.deps.Streams.In)
		if err != nil {
			return nil, err
		}
		var out []target
		for _, o := range objs {
			res, err := a.reg.forGVK(o.Obj.GroupVersionKind())
			if err != nil {
				return nil, fmt.Errorf("%s: %w", o.Source, err)
			}
			if len(out) > 0 && out[len(out)-1].Res == res {
				out[len(out)-1].Names = append(out[len(out)-1].Names, o.Obj.GetName())
				continue
			}
			out = append(out, target{Res: res, Names: []string{o.Obj.GetName()}})
		}
		return out, nil
	}
	if len(args) == 0 {
		return nil, fmt.Errorf("give a resource type (one of %s) or -f FILENAME", strings.Join(a.reg.names(), ", "))
	}
	res, err := a.reg.lookup(args[0])
	if err != nil {
		return nil, err
	}
	if needNames && len(args) < 2 {
		return nil, fmt.Errorf("give the name of the %s (ginghamctl get %s lists them)", res.Kind, res.Plural)
	}
	return []target{{Res: res, Names: args[1:]}}, nil
}

func (a *app) newGetCommand() *cobra.Command {
	var files []string
	var output, selector string
	cmd := &cobra.Command{
		Use:   "get (KIND [NAME...] | -f FILENAME)",
		Short: "Show resources as a table, YAML or JSON",
		Long: `Show gingham resources. Without names, every resource of the kind is listed.

Output formats (-o):
  (default)      a table with the kind's main columns (IPPool: NAME CIDR SELECTOR)
  wide           every column (IPPool: NAME CIDR NAT IPIPMODE VXLANMODE DISABLED DISABLEBGPEXPORT SELECTOR)
  yaml, json     the objects; one object bare, several as a list (kind: IPPoolList)
  custom-columns=HEADER:.json.path,...  or  custom-columns=NAME,CIDR,...  (columns of the wide table)

An empty list prints the table header and "No <kind> resources found." on stderr, and succeeds.`,
		Example: `  ginghamctl get ippools
  ginghamctl get ippool default-ipv4-ippool -o yaml
  ginghamctl get pools -o wide
  ginghamctl get bgppeers -o custom-columns=NAME:.metadata.name,PEER:.spec.peerIP,AS:.spec.asNumber
  ginghamctl get ippools -o custom-columns=NAME,CIDR,IPIPMODE
  ginghamctl get nodestatus -o wide
  ginghamctl get -f pools.yaml -o yaml`,
		ValidArgsFunction: a.completeKinds,
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := parseOutput(output)
			if err != nil {
				return err
			}
			ts, err := a.targets(args, files, false)
			if err != nil {
				return err
			}
			var sel labels.Selector
			if selector != "" {
				if sel, err = labels.Parse(selector); err != nil {
					return fmt.Errorf("parse --selector %q: %w", selector, err)
				}
			}
			return a.get(cmd.Context(), ts, format, sel, len(files) == 0 && len(args) == 2)
		},
	}
	cmd.Flags().StringSliceVarP(&files, "filename", "f", nil, "get the resources named in these files (file, directory or -)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: wide, yaml, json, custom-columns=…")
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "label selector (Kubernetes syntax), e.g. -l rack=r1")
	return cmd
}

// fetch reads the objects of one target.
func (a *app) fetch(ctx context.Context, c client.Client, t target, sel labels.Selector) ([]*unstructured.Unstructured, string, error) {
	if len(t.Names) > 0 {
		var out []*unstructured.Unstructured
		for _, n := range t.Names {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(t.Res.GVK())
			if err := c.Get(ctx, client.ObjectKey{Name: n}, u); err != nil {
				return nil, "", fmt.Errorf("failed to get '%s' resource %q: %w", t.Res.Kind, n, err)
			}
			out = append(out, u)
		}
		return out, "", nil
	}
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(t.Res.ListGVK())
	var opts []client.ListOption
	if sel != nil {
		opts = append(opts, client.MatchingLabelsSelector{Selector: sel})
	}
	if err := c.List(ctx, list, opts...); err != nil {
		return nil, "", fmt.Errorf("failed to list '%s' resources: %w", t.Res.Kind, err)
	}
	out := make([]*unstructured.Unstructured, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, &list.Items[i])
	}
	sortByName(out)
	return out, list.GetResourceVersion(), nil
}

func (a *app) get(ctx context.Context, ts []target, format outputFormat, sel labels.Selector, single bool) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	var all []*unstructured.Unstructured
	var rv string
	for i, t := range ts {
		objs, listRV, err := a.fetch(ctx, c, t, sel)
		if err != nil {
			return err
		}
		rv = listRV
		if format.Kind == "yaml" || format.Kind == "json" {
			all = append(all, objs...)
			continue
		}
		if i > 0 {
			a.out("\n")
		}
		if err := a.printTable(a.deps.Streams.Out, t.Res, objs, format); err != nil {
			return err
		}
	}
	if format.Kind != "yaml" && format.Kind != "json" {
		return nil
	}
	listKind := ts[0].Res.Kind + "List"
	if len(ts) > 1 {
		listKind, rv = "List", ""
	}
	return printDocument(a.deps.Streams.Out, format.Kind, all, listKind, rv, single)
}

// printTable prints one kind's table, with a note on stderr when empty.
func (a *app) printTable(w io.Writer, res *resource, objs []*unstructured.Unstructured, format outputFormat) error {
	cols := res.Narrow
	switch format.Kind {
	case "wide":
		cols = res.Wide
	case "custom-columns":
		var err error
		if cols, err = customColumns(res, format.Columns); err != nil {
			return err
		}
	}
	if err := printTable(w, res, objs, cols); err != nil {
		return err
	}
	if len(objs) == 0 {
		a.errf("No %s resources found.\n", res.Kind)
	}
	return nil
}
