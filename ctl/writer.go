package ctl

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/gingham-net/gingham/api/model"
	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/api/validation"
)

// writeOp is create, apply or replace.
type writeOp struct {
	Verb string // create
	Past string // created
}

var (
	opCreate  = writeOp{"create", "created"}
	opApply   = writeOp{"apply", "applied"}
	opReplace = writeOp{"replace", "replaced"}
)

// item is one object on its way to the API server.
type item struct {
	sourced
	Res *resource
	Err error // set when the item failed
}

func (it *item) label() string { return fmt.Sprintf("'%s' resource %q", it.Res.Kind, it.Obj.GetName()) }

// prepare resolves kinds and checks the objects locally; it returns the
// items and whether all passed.
func (a *app) prepare(ctx context.Context, c client.Client, objs []sourced, op writeOp) ([]*item, bool) {
	items := make([]*item, 0, len(objs))
	ok := true
	var pools []v1.IPPool
	var poolItems []*item
	for _, s := range objs {
		it := &item{sourced: s}
		items = append(items, it)
		res, err := a.reg.forGVK(s.Obj.GroupVersionKind())
		if err != nil {
			it.Res = &resource{Kind: s.Obj.GetKind()}
			it.Err = fmt.Errorf("%s: %w", s.Source, err)
			ok = false
			continue
		}
		it.Res = res
		switch {
		case s.Obj.GetName() == "":
			it.Err = fmt.Errorf("%s: error with field metadata.name = '' (name is required)", s.Source)
		case s.Obj.GetNamespace() != "":
			it.Err = fmt.Errorf("%s: error with field metadata.namespace = '%s' (%s resources are cluster-scoped; remove the namespace)", s.Source, s.Obj.GetNamespace(), res.Kind)
		}
		if it.Err != nil {
			ok = false
			continue
		}
		if res.Kind == "IPPool" {
			var p v1.IPPool
			// A pool that fails the single-object rules is left to the API
			// server, whose CEL rules are the same and whose message names
			// the field; only pools valid on their own are checked against
			// the others.
			if runtime.DefaultUnstructuredConverter.FromUnstructured(s.Obj.Object, &p) == nil && validOnItsOwn(&p) {
				pools = append(pools, p)
				poolItems = append(poolItems, it)
			}
		}
	}
	if len(pools) > 0 {
		cluster, err := clusterPools(ctx, c)
		if err != nil {
			for _, it := range poolItems {
				it.Err = err
			}
			return items, false
		}
		for i, err := range validation.Pools(pools, cluster) {
			if err != nil {
				poolItems[i].Err = fmt.Errorf("%s: %w", poolItems[i].Source, err)
				ok = false
			}
		}
	}
	return items, ok
}

func validOnItsOwn(p *v1.IPPool) bool {
	_, err := model.PoolFromAPI(p)
	return err == nil
}

// clusterPools reads what pools are checked against.
func clusterPools(ctx context.Context, c client.Client) (validation.Cluster, error) {
	var pools v1.IPPoolList
	if err := c.List(ctx, &pools); err != nil {
		return validation.Cluster{}, fmt.Errorf("list existing IPPools to check for overlaps: %w", err)
	}
	var blocks v1.IPAMBlockList
	if err := c.List(ctx, &blocks); err != nil {
		return validation.Cluster{}, fmt.Errorf("list IPAM blocks to check block sizes: %w", err)
	}
	cl := validation.Cluster{Pools: pools.Items}
	for _, b := range blocks.Items {
		if p, err := netip.ParsePrefix(b.Spec.CIDR); err == nil {
			cl.Blocks = append(cl.Blocks, p)
		}
	}
	return cl, nil
}

// write sends one object.
func write(ctx context.Context, c client.Client, op writeOp, obj *unstructured.Unstructured, skipExists bool) error {
	strict := client.FieldValidation("Strict")
	if op == opCreate {
		err := c.Create(ctx, obj, strict)
		if skipExists && apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	}
	cur := &unstructured.Unstructured{}
	cur.SetGroupVersionKind(obj.GroupVersionKind())
	err := c.Get(ctx, client.ObjectKey{Name: obj.GetName()}, cur)
	switch {
	case apierrors.IsNotFound(err) && op == opApply:
		return c.Create(ctx, obj, strict)
	case err != nil:
		return err
	}
	if obj.GetResourceVersion() == "" {
		obj.SetResourceVersion(cur.GetResourceVersion())
	}
	return c.Update(ctx, obj, strict)
}

// writeAll checks then writes objects and reports like calicoctl. It
// returns errReported when anything failed.
func (a *app) writeAll(ctx context.Context, op writeOp, objs []sourced, skipExists bool) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	items, ok := a.prepare(ctx, c, objs, op)
	if !ok {
		failed := 0
		for _, it := range items {
			if it.Err != nil {
				failed++
				a.errf("failed to %s %s: %v\n", op.Verb, it.label(), it.Err)
			}
		}
		a.errf("nothing was written: %d of %d resource(s) failed validation\n", failed, len(items))
		return errReported
	}
	var done []*item
	for _, it := range items {
		if err := write(ctx, c, op, it.Obj, skipExists); err != nil {
			it.Err = err
			continue
		}
		done = append(done, it)
	}
	if len(done) == len(items) {
		for _, line := range successLines(op.Past, done) {
			a.out("%s\n", line)
		}
		return nil
	}
	if len(done) > 0 {
		a.out("Partial success: %s %d out of %d resources:\n", op.Past, len(done), len(items))
		for _, it := range done {
			a.out("  %s %s\n", op.Past, it.label())
		}
	}
	for _, it := range items {
		if it.Err != nil {
			a.errf("failed to %s %s: %v\n", op.Verb, it.label(), it.Err)
		}
	}
	return errReported
}

// successLines counts done items per kind, in order of first appearance:
// "Successfully created 2 'IPPool' resource(s)".
func successLines(past string, done []*item) []string {
	var kinds []string
	n := map[string]int{}
	for _, it := range done {
		if n[it.Res.Kind] == 0 {
			kinds = append(kinds, it.Res.Kind)
		}
		n[it.Res.Kind]++
	}
	out := make([]string, 0, len(kinds))
	for _, k := range kinds {
		out = append(out, fmt.Sprintf("Successfully %s %d '%s' resource(s)", past, n[k], k))
	}
	return out
}

func (a *app) newWriteCommand(op writeOp) *cobra.Command {
	var files []string
	var skipExists bool
	what := map[writeOp]string{
		opCreate:  "Create resources from files; fails for a resource that already exists (unless --skip-exists).",
		opApply:   "Create resources from files, or replace them when they exist.",
		opReplace: "Replace existing resources with the content of files; fails for a resource that does not exist.",
	}[op]
	cmd := &cobra.Command{
		Use:   op.Verb + " -f FILENAME",
		Short: strings.TrimSuffix(strings.SplitN(what, ";", 2)[0], "."),
		Long: what + `

FILENAME is a file, a directory (its .yaml, .yml and .json files) or "-" for
stdin; a file may hold several YAML documents or a List. Every object is
checked first (IPPools also against the existing pools: no overlap, cidr and
blockSize unchanged); when any check fails nothing is written. Objects are
then written in order; when some fail, ginghamctl says which were ` + op.Past + `
and which failed, and exits 1.`,
		Example: fmt.Sprintf(`  ginghamctl %[1]s -f pool.yaml
  ginghamctl %[1]s -f deploy/examples/
  cat <<EOF | ginghamctl %[1]s -f -
  apiVersion: gingham.dev/v1
  kind: IPPool
  metadata: {name: pool-b}
  spec: {cidr: 10.245.0.0/16, ipipMode: CrossSubnet, natOutgoing: true}
  EOF`, op.Verb),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return fmt.Errorf("%s needs -f FILENAME (a file, a directory or - for stdin)", op.Verb)
			}
			objs, err := readObjects(files, a.deps.Streams.In)
			if err != nil {
				return err
			}
			return a.writeAll(cmd.Context(), op, objs, skipExists)
		},
	}
	cmd.Flags().StringSliceVarP(&files, "filename", "f", nil, "file, directory or - (stdin) holding the resources; may be repeated")
	if op == opCreate {
		cmd.Flags().BoolVar(&skipExists, "skip-exists", false, "do not fail for resources that already exist")
	}
	return cmd
}
