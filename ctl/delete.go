package ctl

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/gingham-net/gingham/api/v1"
)

func (a *app) newDeleteCommand() *cobra.Command {
	var files []string
	var skipNotExists bool
	cmd := &cobra.Command{
		Use:   "delete (KIND NAME... | -f FILENAME)",
		Short: "Delete resources (IP pools safely: disable, release block affinities, delete)",
		Long: `Delete resources by kind and name, or those named in files.

An IPPool is deleted the way Calico deletes one, so that no new address is
handed out from it while addresses in use keep working:
  1. the pool is disabled (spec.disabled: true), so IPAM stops allocating from it;
  2. after a short pause, every node's block affinity in the pool is released;
  3. the pool is deleted.
Pods keep their addresses; move them to another pool by recreating them.`,
		Example: `  ginghamctl delete ippool pool-b
  ginghamctl delete bgppeer tor-a tor-b
  ginghamctl delete -f deploy/examples/tor-peering.yaml
  ginghamctl delete ippool old-pool --skip-not-exists`,
		ValidArgsFunction: a.completeKinds,
		RunE: func(cmd *cobra.Command, args []string) error {
			ts, err := a.targets(args, files, true)
			if err != nil {
				return err
			}
			return a.deleteAll(cmd.Context(), ts, skipNotExists)
		},
	}
	cmd.Flags().StringSliceVarP(&files, "filename", "f", nil, "delete the resources named in these files (file, directory or -)")
	cmd.Flags().BoolVar(&skipNotExists, "skip-not-exists", false, "do not fail for resources that do not exist")
	return cmd
}

func (a *app) deleteAll(ctx context.Context, ts []target, skipNotExists bool) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	var done, failed []*item
	for _, t := range ts {
		for _, n := range t.Names {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(t.Res.GVK())
			u.SetName(n)
			it := &item{sourced: sourced{Obj: u}, Res: t.Res}
			if t.Res.Kind == "IPPool" {
				err = a.deletePool(ctx, c, n)
			} else {
				err = c.Delete(ctx, u)
			}
			if err != nil && !(skipNotExists && apierrors.IsNotFound(err)) {
				it.Err = err
				failed = append(failed, it)
				continue
			}
			done = append(done, it)
		}
	}
	if len(failed) == 0 {
		for _, line := range successLines("deleted", done) {
			a.out("%s\n", line)
		}
		return nil
	}
	if len(done) > 0 {
		a.out("Partial success: deleted %d out of %d resources:\n", len(done), len(done)+len(failed))
		for _, it := range done {
			a.out("  deleted %s\n", it.label())
		}
	}
	for _, it := range failed {
		a.errf("Failed to delete %s: %v\n", it.label(), it.Err)
	}
	return errReported
}

// deletePool disables the pool, releases its block affinities and deletes
// it (Calico's order: no allocation can start in the pool after step one,
// and addresses already handed out stay valid).
func (a *app) deletePool(ctx context.Context, c client.Client, name string) error {
	var p v1.IPPool
	if err := c.Get(ctx, client.ObjectKey{Name: name}, &p); err != nil {
		return err
	}
	if !p.Spec.Disabled {
		patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"disabled":true}}`))
		if err := c.Patch(ctx, &p, patch); err != nil {
			return fmt.Errorf("disable pool before deleting it: %w", err)
		}
		if a.deps.PoolDrainDelay > 0 {
			t := time.NewTimer(a.deps.PoolDrainDelay)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("pool %q is disabled but not deleted: %w", name, ctx.Err())
			case <-t.C:
			}
		}
	}
	cidr, err := netip.ParsePrefix(p.Spec.CIDR)
	switch {
	case err != nil:
		a.errf("warning: IPPool %q has an invalid cidr %q; no block affinities to release\n", name, p.Spec.CIDR)
	case a.deps.IPAM == nil:
		a.errf("warning: this ginghamctl build cannot release block affinities; the blocks of IPPool %q (%s) stay claimed by their nodes until the agent's IPAM garbage collection releases them\n", name, cidr)
	default:
		if err := a.deps.IPAM(c).ReleasePoolAffinities(ctx, cidr); err != nil {
			return fmt.Errorf("pool %q is disabled but not deleted: release its block affinities: %w (run the delete again)", name, err)
		}
	}
	if err := c.Delete(ctx, &p); err != nil {
		return fmt.Errorf("pool %q is disabled but not deleted: %w", name, err)
	}
	return nil
}
