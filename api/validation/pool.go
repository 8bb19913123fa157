package validation

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"

	"github.com/gingham-net/gingham/api/model"
	v1 "github.com/gingham-net/gingham/api/v1"
)

// Cluster is what a pool is checked against.
type Cluster struct {
	// Pools are the pools that exist (or will, earlier in the same batch),
	// including the previous version of the pool being checked, if any.
	Pools []v1.IPPool
	// Blocks are the CIDRs of existing IPAM blocks.
	Blocks []netip.Prefix
}

// Pool validates p as a new or changed pool of cluster c: first the
// single-object rules of api/model, then the rules that need c. It returns
// the validated model of p, or every failed rule joined (each a
// *model.FieldError).
func Pool(p *v1.IPPool, c Cluster) (model.Pool, error) {
	mp, err := model.PoolFromAPI(p)
	if err != nil {
		return model.Pool{}, err
	}
	var errs []error
	others := sortedByName(c.Pools)
	for i := range others {
		o := &others[i]
		if o.Name != p.Name {
			continue
		}
		if old, err := model.PoolFromAPI(o); err == nil {
			if old.CIDR != mp.CIDR {
				errs = append(errs, fieldErr("spec.cidr", p.Spec.CIDR, "IPPool CIDR cannot be modified"))
			} else if old.BlockSize != mp.BlockSize {
				errs = append(errs, fieldErr("spec.blockSize", mp.BlockSize, "IPPool BlockSize cannot be modified"))
			}
		}
	}
	for i := range others {
		o := &others[i]
		if o.Name == p.Name {
			continue
		}
		oc, err := netip.ParsePrefix(o.Spec.CIDR)
		if err != nil {
			continue // an invalid pool overlaps nothing; it is reported on its own
		}
		if oc.Masked().Overlaps(mp.CIDR) {
			errs = append(errs, fieldErr("spec.cidr", p.Spec.CIDR,
				fmt.Sprintf("IPPool(%s) CIDR overlaps with IPPool(%s) CIDR %s", p.Name, o.Name, o.Spec.CIDR)))
		}
	}
	for _, b := range c.Blocks {
		if mp.CIDR.Contains(b.Addr()) && b.Bits() != mp.BlockSize {
			errs = append(errs, fieldErr("spec.blockSize", mp.BlockSize,
				fmt.Sprintf("IPPool blockSize conflicts with existing allocations that use a different blockSize (block %s)", b)))
			break
		}
	}
	if len(errs) > 0 {
		return model.Pool{}, errors.Join(errs...)
	}
	return mp, nil
}

// Pools validates a batch of pools written together (as `ginghamctl apply
// -f dir` does): each against c and the pools before it in the batch. It
// returns one error per pool, nil for the valid ones.
func Pools(batch []v1.IPPool, c Cluster) []error {
	errs := make([]error, len(batch))
	seen := append([]v1.IPPool(nil), c.Pools...)
	for i := range batch {
		_, errs[i] = Pool(&batch[i], Cluster{Pools: seen, Blocks: c.Blocks})
		if errs[i] == nil {
			seen = replaceByName(seen, batch[i])
		}
	}
	return errs
}

func replaceByName(pools []v1.IPPool, p v1.IPPool) []v1.IPPool {
	for i := range pools {
		if pools[i].Name == p.Name {
			out := append([]v1.IPPool(nil), pools...)
			out[i] = p
			return out
		}
	}
	return append(pools, p)
}

func sortedByName(in []v1.IPPool) []v1.IPPool {
	out := append([]v1.IPPool(nil), in...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func fieldErr(field string, value any, reason string) error {
	return &model.FieldError{Field: field, Value: value, Reason: reason}
}
