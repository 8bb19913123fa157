package validation

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/gingham-net/gingham/api/model"
	v1 "github.com/gingham-net/gingham/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func pool(name, cidr string, blockSize ...int) v1.IPPool {
	p := v1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1.IPPoolSpec{CIDR: cidr}}
	if len(blockSize) > 0 {
		p.Spec.BlockSize = &blockSize[0]
	}
	return p
}

func TestPool(t *testing.T) {
	tests := []struct {
		name    string
		pool    v1.IPPool
		cluster Cluster
		want    []string // substrings of the error; none means valid
	}{
		{name: "first pool", pool: pool("a", "10.0.0.0/16")},
		{name: "disjoint pools", pool: pool("b", "10.1.0.0/16"), cluster: Cluster{Pools: []v1.IPPool{pool("a", "10.0.0.0/16")}}},
		{name: "v4 and v6 never overlap", pool: pool("v6", "fd00::/48"), cluster: Cluster{Pools: []v1.IPPool{pool("a", "0.0.0.0/1")}}},
		{
			name: "inside another pool", pool: pool("b", "10.0.1.0/24"),
			cluster: Cluster{Pools: []v1.IPPool{pool("a", "10.0.0.0/16")}},
			want:    []string{"error with field spec.cidr = '10.0.1.0/24' (IPPool(b) CIDR overlaps with IPPool(a) CIDR 10.0.0.0/16)"},
		},
		{
			name: "covering two pools names both", pool: pool("big", "10.0.0.0/8"),
			cluster: Cluster{Pools: []v1.IPPool{pool("y", "10.2.0.0/16"), pool("x", "10.1.0.0/16")}},
			want:    []string{"IPPool(big) CIDR overlaps with IPPool(x) CIDR 10.1.0.0/16", "IPPool(big) CIDR overlaps with IPPool(y) CIDR 10.2.0.0/16"},
		},
		{name: "same pool unchanged", pool: pool("a", "10.0.0.0/16"), cluster: Cluster{Pools: []v1.IPPool{pool("a", "10.0.0.0/16")}}},
		{name: "unset blockSize equals default", pool: pool("a", "10.0.0.0/16"), cluster: Cluster{Pools: []v1.IPPool{pool("a", "10.0.0.0/16", 26)}}},
		{
			name: "cidr changed", pool: pool("a", "10.9.0.0/16"), cluster: Cluster{Pools: []v1.IPPool{pool("a", "10.0.0.0/16")}},
			want: []string{"error with field spec.cidr = '10.9.0.0/16' (IPPool CIDR cannot be modified)"},
		},
		{
			name: "blockSize changed", pool: pool("a", "10.0.0.0/16", 28), cluster: Cluster{Pools: []v1.IPPool{pool("a", "10.0.0.0/16")}},
			want: []string{"error with field spec.blockSize = '28' (IPPool BlockSize cannot be modified)"},
		},
		{
			name: "blocks of another size", pool: pool("a", "10.0.0.0/16", 28),
			cluster: Cluster{Blocks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/26")}},
			want:    []string{"spec.blockSize", "conflicts with existing allocations"},
		},
		{name: "blocks of the same size", pool: pool("a", "10.0.0.0/16"), cluster: Cluster{Blocks: []netip.Prefix{netip.MustParsePrefix("10.0.0.64/26")}}},
		{name: "blocks outside the pool", pool: pool("a", "10.0.0.0/16", 28), cluster: Cluster{Blocks: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/26")}}},
		{name: "invalid other pool is ignored", pool: pool("a", "10.0.0.0/16"), cluster: Cluster{Pools: []v1.IPPool{pool("bad", "junk")}}},
		{name: "single-object rule first", pool: pool("a", "10.0.0.1/16"), want: []string{"error with field spec.cidr = '10.0.0.1/16' (IPPool CIDR is not strictly masked)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Pool(&tc.pool, tc.cluster)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Pool() error = %v, want valid", err)
				}
				if got.Name != tc.pool.Name {
					t.Fatalf("Pool() model name = %q, want %q", got.Name, tc.pool.Name)
				}
				return
			}
			if err == nil {
				t.Fatalf("Pool() accepted %+v, want error %q", tc.pool.Spec, tc.want)
			}
			if !errors.Is(err, model.ErrInvalid) {
				t.Errorf("errors.Is(%v, model.ErrInvalid) = false", err)
			}
			var fe *model.FieldError
			if !errors.As(err, &fe) {
				t.Errorf("error %v is no *model.FieldError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestPoolsBatch(t *testing.T) {
	existing := Cluster{Pools: []v1.IPPool{pool("a", "10.0.0.0/16")}}
	tests := []struct {
		name  string
		batch []v1.IPPool
		want  []string // per pool: "" valid, else a substring of its error
	}{
		{"independent pools", []v1.IPPool{pool("b", "10.1.0.0/16"), pool("c", "10.2.0.0/16")}, []string{"", ""}},
		{"second overlaps first of batch", []v1.IPPool{pool("b", "10.1.0.0/16"), pool("c", "10.1.128.0/17")}, []string{"", "IPPool(c) CIDR overlaps with IPPool(b)"}},
		{"overlaps existing", []v1.IPPool{pool("b", "10.0.5.0/24")}, []string{"IPPool(b) CIDR overlaps with IPPool(a)"}},
		{"invalid one does not hide later", []v1.IPPool{pool("b", "10.0.5.0/24"), pool("c", "10.0.5.0/24")}, []string{"overlaps with IPPool(a)", "overlaps with IPPool(a)"}},
		{"re-applying existing is fine", []v1.IPPool{pool("a", "10.0.0.0/16")}, []string{""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errs := Pools(tc.batch, existing)
			for i, w := range tc.want {
				switch {
				case w == "" && errs[i] != nil:
					t.Errorf("pool %s: error %v, want valid", tc.batch[i].Name, errs[i])
				case w != "" && (errs[i] == nil || !strings.Contains(errs[i].Error(), w)):
					t.Errorf("pool %s: error %v, want %q", tc.batch[i].Name, errs[i], w)
				}
			}
		})
	}
}
