package ctl

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/netip"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/gingham-net/gingham/api/v1"
)

// Owner attribute keys of an allocation (AllocationAttribute.Secondary),
// the same as Calico's and the ipam package's.
const (
	attrPod       = "pod"
	attrNamespace = "namespace"
	attrNode      = "node"
)

func (a *app) newIPAMCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ipam",
		Short: "Show, check and repair IP address management",
		Long: `Show how much of each IP pool is in use, check the IPAM objects (IPAMBlock,
BlockAffinity, IPAMHandle) for leaks and inconsistencies, and release an
address by hand.`,
	}
	cmd.AddCommand(a.newIPAMShowCommand(), a.newIPAMCheckCommand(), a.newIPAMReleaseCommand())
	return cmd
}

// ipamState is every IPAM object, read once.
type ipamState struct {
	Pools      []v1.IPPool
	Blocks     []v1.IPAMBlock
	Affinities []v1.BlockAffinity
	Handles    []v1.IPAMHandle
}

func readIPAM(ctx context.Context, c client.Client) (*ipamState, error) {
	var pools v1.IPPoolList
	var blocks v1.IPAMBlockList
	var affs v1.BlockAffinityList
	var handles v1.IPAMHandleList
	for _, l := range []struct {
		what string
		list client.ObjectList
	}{{"IPPools", &pools}, {"IPAM blocks", &blocks}, {"block affinities", &affs}, {"IPAM handles", &handles}} {
		if err := c.List(ctx, l.list); err != nil {
			return nil, fmt.Errorf("list %s: %w", l.what, err)
		}
	}
	st := &ipamState{Pools: pools.Items, Blocks: blocks.Items, Affinities: affs.Items, Handles: handles.Items}
	sort.Slice(st.Pools, func(i, j int) bool { return st.Pools[i].Spec.CIDR < st.Pools[j].Spec.CIDR })
	sort.Slice(st.Blocks, func(i, j int) bool { return prefixLess(st.Blocks[i].Spec.CIDR, st.Blocks[j].Spec.CIDR) })
	return st, nil
}

func prefixLess(a, b string) bool {
	pa, ea := netip.ParsePrefix(a)
	pb, eb := netip.ParsePrefix(b)
	if ea != nil || eb != nil {
		return a < b
	}
	if c := pa.Addr().Compare(pb.Addr()); c != 0 {
		return c < 0
	}
	return pa.Bits() < pb.Bits()
}

func (a *app) newIPAMShowCommand() *cobra.Command {
	var showBlocks bool
	var ip string
	cmd := &cobra.Command{
		Use:   "show [--show-blocks] [--ip ADDR]",
		Short: "Show IP pool usage, or who holds one address",
		Long: `Show, per IP pool, how many addresses there are, how many are in use and
how many are free (as calicoctl ipam show does); --show-blocks adds a row per
allocation block. With --ip, show whether that address is allocated, its
handle and its owner (pod, namespace, node).`,
		Example: `  ginghamctl ipam show
  ginghamctl ipam show --show-blocks
  ginghamctl ipam show --ip 10.244.1.7`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			st, err := readIPAM(cmd.Context(), c)
			if err != nil {
				return err
			}
			if ip != "" {
				addr, err := netip.ParseAddr(ip)
				if err != nil {
					return fmt.Errorf("--ip %q is not an IP address", ip)
				}
				renderIPOwner(a.deps.Streams.Out, st, addr)
				return nil
			}
			renderIPAMShow(a.deps.Streams.Out, st, showBlocks)
			return nil
		},
	}
	cmd.Flags().BoolVar(&showBlocks, "show-blocks", false, "add a row per allocation block")
	cmd.Flags().StringVar(&ip, "ip", "", "show who holds this address")
	return cmd
}

// usage formats "n (p%)" as calicoctl does (%.5g, rounded percentage).
func usage(n, total float64) string {
	pct := 0.0
	if total > 0 {
		pct = math.Round(100 * n / total)
	}
	return fmt.Sprintf("%.5g (%.0f%%)", n, pct)
}

func inUse(b *v1.IPAMBlock) float64 { return float64(blockInUse(b)) }

func blockSize(cidr netip.Prefix) float64 {
	return math.Pow(2, float64(cidr.Addr().BitLen()-cidr.Bits()))
}

func renderIPAMShow(w io.Writer, st *ipamState, showBlocks bool) {
	if len(st.Pools) == 0 && len(st.Blocks) == 0 {
		fmt.Fprintln(w, "No IP pools and no IPAM blocks found.")
		return
	}
	var rows [][]string
	used := map[int]bool{}
	for _, p := range st.Pools {
		pc, err := netip.ParsePrefix(p.Spec.CIDR)
		if err != nil {
			rows = append(rows, []string{"IP Pool", p.Spec.CIDR + " (invalid)", "-", "-", "-"})
			continue
		}
		total := blockSize(pc)
		var n float64
		var blockRows [][]string
		for i := range st.Blocks {
			b := &st.Blocks[i]
			bc, err := netip.ParsePrefix(b.Spec.CIDR)
			if err != nil || !pc.Contains(bc.Addr()) {
				continue
			}
			used[i] = true
			n += inUse(b)
			bs := blockSize(bc)
			blockRows = append(blockRows, []string{"Block", b.Spec.CIDR, fmt.Sprintf("%.5g", bs), usage(inUse(b), bs), usage(bs-inUse(b), bs)})
		}
		rows = append(rows, []string{"IP Pool", p.Spec.CIDR, fmt.Sprintf("%.5g", total), usage(n, total), usage(total-n, total)})
		if showBlocks {
			rows = append(rows, blockRows...)
		}
	}
	if showBlocks {
		for i := range st.Blocks {
			if used[i] {
				continue
			}
			b := &st.Blocks[i]
			bs := 0.0
			if bc, err := netip.ParsePrefix(b.Spec.CIDR); err == nil {
				bs = blockSize(bc)
			}
			rows = append(rows, []string{"Block (no pool)", b.Spec.CIDR, fmt.Sprintf("%.5g", bs), usage(inUse(b), bs), usage(bs-inUse(b), bs)})
		}
	}
	boxTable(w, []string{"GROUPING", "CIDR", "IPS TOTAL", "IPS IN USE", "IPS FREE"}, rows)
}

// ordinal is addr's index in block, if block holds it.
func ordinal(block netip.Prefix, addr netip.Addr) (int, bool) {
	if !block.Contains(addr) {
		return 0, false
	}
	hostBits := addr.BitLen() - block.Bits()
	if hostBits > 30 {
		return 0, false // not a block: blocks hold at most 2^12 addresses
	}
	a := addr.As16()
	var low uint64
	for _, x := range a[8:] {
		low = low<<8 | uint64(x)
	}
	off := int(low & (1<<hostBits - 1))
	return off, true
}

// renderIPOwner prints who holds addr.
func renderIPOwner(w io.Writer, st *ipamState, addr netip.Addr) {
	for i := range st.Blocks {
		b := &st.Blocks[i]
		bc, err := netip.ParsePrefix(b.Spec.CIDR)
		if err != nil {
			continue
		}
		ord, ok := ordinal(bc, addr)
		if !ok {
			continue
		}
		if ord >= len(b.Spec.Allocations) || b.Spec.Allocations[ord] == nil {
			fmt.Fprintf(w, "IP %s is not assigned (block %s)\n", addr, b.Spec.CIDR)
			return
		}
		fmt.Fprintf(w, "IP %s is in use (block %s)\n", addr, b.Spec.CIDR)
		idx := *b.Spec.Allocations[ord]
		if idx < 0 || idx >= len(b.Spec.Attributes) {
			fmt.Fprintf(w, "Owner unknown: the block's allocation points at attribute %d, which does not exist (run ginghamctl ipam check)\n", idx)
			return
		}
		attr := b.Spec.Attributes[idx]
		if attr.HandleID != nil {
			fmt.Fprintf(w, "Handle ID: %s\n", *attr.HandleID)
		}
		if len(attr.Secondary) > 0 {
			fmt.Fprintln(w, "Active Owner Attributes:")
			keys := make([]string, 0, len(attr.Secondary))
			for k := range attr.Secondary {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(w, "  %s: %s\n", k, attr.Secondary[k])
			}
		}
		return
	}
	pool := "no IP pool"
	for _, p := range st.Pools {
		if pc, err := netip.ParsePrefix(p.Spec.CIDR); err == nil && pc.Contains(addr) {
			pool = "IP pool " + p.Name
		}
	}
	fmt.Fprintf(w, "IP %s is not assigned (no allocation block holds it; it is in %s)\n", addr, pool)
}

func (a *app) newIPAMReleaseCommand() *cobra.Command {
	var ip string
	cmd := &cobra.Command{
		Use:   "release --ip ADDR",
		Short: "Release one allocated address",
		Long: `Release one address allocated in IPAM, e.g. one that ginghamctl ipam check
reports as leaked. Make sure no pod uses it: a released address is handed out
again.`,
		Example: `  ginghamctl ipam check
  ginghamctl ipam release --ip 10.244.1.7`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr, err := netip.ParseAddr(strings.TrimSpace(ip))
			if err != nil {
				return fmt.Errorf("--ip %q is not an IP address", ip)
			}
			if a.deps.IPAM == nil {
				return fmt.Errorf("ipam release is not available in this ginghamctl build (it needs the ipam package's release API)")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := a.deps.IPAM(c).ReleaseIP(cmd.Context(), addr); err != nil {
				return fmt.Errorf("release IP address %s: %w", addr, err)
			}
			a.out("Successfully released IP address %s\n", addr)
			return nil
		},
	}
	cmd.Flags().StringVar(&ip, "ip", "", "the address to release")
	_ = cmd.MarkFlagRequired("ip")
	return cmd
}
