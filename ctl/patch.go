package ctl

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/gingham-net/gingham/api/v1"
	apivalidation "github.com/gingham-net/gingham/api/validation"
)

func patchType(s string) (types.PatchType, error) {
	switch s {
	case "", "merge":
		return types.MergePatchType, nil
	case "json":
		return types.JSONPatchType, nil
	case "strategic":
		return "", fmt.Errorf("--type strategic is not supported by custom resources such as gingham's; use --type merge (the default) or json")
	}
	return "", fmt.Errorf("unknown --type %q: use merge or json", s)
}

func (a *app) newPatchCommand() *cobra.Command {
	var patch, typ string
	cmd := &cobra.Command{
		Use:   "patch KIND NAME -p PATCH",
		Short: "Change fields of one resource with a JSON merge patch or JSON patch",
		Long: `Change fields of one resource. PATCH is a JSON merge patch (RFC 7386, the
default) or, with --type json, a JSON patch (RFC 6902). The patched object
is computed by the API server without saving it (dry run) and checked like a
created one (for IPPools: no overlap, cidr and blockSize unchanged) before it
is written.`,
		Example: `  # Encapsulate the pool's traffic in IP-in-IP between subnets
  ginghamctl patch ippool default-ipv4-ippool -p '{"spec":{"ipipMode":"CrossSubnet"}}'

  # Masquerade traffic leaving the pools, then stop
  ginghamctl patch ippool default-ipv4-ippool -p '{"spec":{"natOutgoing":true}}'
  ginghamctl patch ippool default-ipv4-ippool --type json -p '[{"op":"remove","path":"/spec/natOutgoing"}]'

  # Stop allocating from a pool (addresses in use keep working)
  ginghamctl patch ippool old-pool -p '{"spec":{"disabled":true}}'`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: a.completeKinds,
		RunE: func(cmd *cobra.Command, args []string) error {
			if patch == "" {
				return fmt.Errorf("patch needs -p PATCH, e.g. -p '{\"spec\":{\"ipipMode\":\"Always\"}}'")
			}
			pt, err := patchType(typ)
			if err != nil {
				return err
			}
			res, err := a.reg.lookup(args[0])
			if err != nil {
				return err
			}
			if err := a.patch(cmd.Context(), res, args[1], pt, []byte(patch)); err != nil {
				return fmt.Errorf("failed to patch '%s' resource %q: %w", res.Kind, args[1], err)
			}
			a.out("Successfully patched 1 '%s' resource\n", res.Kind)
			return nil
		},
	}
	cmd.Flags().StringVarP(&patch, "patch", "p", "", "the patch, as JSON")
	cmd.Flags().StringVarP(&typ, "type", "t", "merge", "patch type: merge or json")
	return cmd
}

// patch dry-runs, checks and then applies a patch.
func (a *app) patch(ctx context.Context, res *resource, name string, pt types.PatchType, data []byte) error {
	if !json.Valid(data) {
		return fmt.Errorf("the patch is not valid JSON: %s", data)
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	obj := func() *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(res.GVK())
		u.SetName(name)
		return u
	}
	p := client.RawPatch(pt, data)
	strict := client.FieldValidation("Strict")
	if res.Kind == "IPPool" {
		dry := obj()
		if err := c.Patch(ctx, dry, p, client.DryRunAll, strict); err != nil {
			return err
		}
		var pool v1.IPPool
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(dry.Object, &pool); err != nil {
			return fmt.Errorf("decode patched IPPool: %w", err)
		}
		cl, err := clusterPools(ctx, c)
		if err != nil {
			return err
		}
		if _, err := apivalidation.Pool(&pool, cl); err != nil {
			return err
		}
	}
	return c.Patch(ctx, obj(), p, strict)
}

func (a *app) newLabelCommand() *cobra.Command {
	var overwrite bool
	cmd := &cobra.Command{
		Use:   "label KIND NAME KEY=VALUE... [KEY-...]",
		Short: "Set or remove labels of one resource",
		Long: `Set labels (KEY=VALUE) or remove them (KEY-) on one resource. Changing the
value of an existing label needs --overwrite.`,
		Example: `  ginghamctl label ippool rack1-pool rack=r1
  ginghamctl label ippool rack1-pool rack=r2 --overwrite
  ginghamctl label bgppeer tor-a rack-`,
		Args:              cobra.MinimumNArgs(3),
		ValidArgsFunction: a.completeKinds,
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := a.reg.lookup(args[0])
			if err != nil {
				return err
			}
			if err := a.label(cmd.Context(), res, args[1], args[2:], overwrite); err != nil {
				return fmt.Errorf("failed to label '%s' resource %q: %w", res.Kind, args[1], err)
			}
			a.out("Successfully labeled 1 '%s' resource\n", res.Kind)
			return nil
		},
	}
	cmd.Flags().BoolVar(&overwrite, "overwrite", false, "allow changing the value of an existing label")
	return cmd
}

// parseLabelArgs turns KEY=VALUE and KEY- into a merge-patch label map
// (nil removes).
func parseLabelArgs(args []string) (map[string]*string, error) {
	out := map[string]*string{}
	for _, arg := range args {
		if key, ok := strings.CutSuffix(arg, "-"); ok && !strings.Contains(arg, "=") {
			out[key] = nil
			continue
		}
		key, val, ok := strings.Cut(arg, "=")
		if !ok {
			return nil, fmt.Errorf("label %q: want KEY=VALUE or KEY-", arg)
		}
		if errs := validation.IsQualifiedName(key); len(errs) > 0 {
			return nil, fmt.Errorf("label key %q: %s", key, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(val); len(errs) > 0 {
			return nil, fmt.Errorf("label %s value %q: %s", key, val, strings.Join(errs, "; "))
		}
		out[key] = &val
	}
	return out, nil
}

func (a *app) label(ctx context.Context, res *resource, name string, args []string, overwrite bool) error {
	changes, err := parseLabelArgs(args)
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	cur := &unstructured.Unstructured{}
	cur.SetGroupVersionKind(res.GVK())
	if err := c.Get(ctx, client.ObjectKey{Name: name}, cur); err != nil {
		return err
	}
	existing := cur.GetLabels()
	for k, v := range changes {
		if old, ok := existing[k]; ok && v != nil && old != *v && !overwrite {
			return fmt.Errorf("label %q already has the value %q; pass --overwrite to change it", k, old)
		}
	}
	data, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": changes, "resourceVersion": cur.GetResourceVersion()}})
	if err != nil {
		return fmt.Errorf("encode label patch: %w", err)
	}
	return c.Patch(ctx, cur, client.RawPatch(types.MergePatchType, data))
}
