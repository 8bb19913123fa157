package ctl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Problem is one inconsistency found by ipam check.
type Problem struct {
	// Type is one of leaked-ip, missing-handle, handle-mismatch,
	// orphan-handle, affinity-mismatch, affinity-without-block, invalid-block.
	Type   string `json:"type"`
	IP     string `json:"ip,omitempty"`
	Object string `json:"object,omitempty"` // Kind/name of the object at fault
	Detail string `json:"detail"`
}

// CheckReport is the result of ipam check (its -o json form).
type CheckReport struct {
	Blocks            int       `json:"blocks"`
	Allocations       int       `json:"allocations"`
	Pools             int       `json:"pools"`
	BlocksOutsidePool int       `json:"blocksOutsidePools"`
	Handles           int       `json:"handles"`
	Pods              int       `json:"pods"`
	Nodes             int       `json:"nodes"`
	Problems          []Problem `json:"problems"`
}

// readOnlyChecker checks the IPAM objects against each other and against
// the pods and nodes that exist, writing nothing.
type readOnlyChecker struct{ c client.Client }

var _ IPAMChecker = readOnlyChecker{}

func (k readOnlyChecker) Check(ctx context.Context) (*CheckReport, error) {
	st, err := readIPAM(ctx, k.c)
	if err != nil {
		return nil, err
	}
	var pods corev1.PodList
	if err := k.c.List(ctx, &pods); err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	var nodes corev1.NodeList
	if err := k.c.List(ctx, &nodes); err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	return checkIPAM(st, pods.Items, nodes.Items), nil
}

// checkIPAM is the pure check behind readOnlyChecker.
func checkIPAM(st *ipamState, pods []corev1.Pod, nodes []corev1.Node) *CheckReport {
	r := &CheckReport{Blocks: len(st.Blocks), Pools: len(st.Pools), Handles: len(st.Handles), Pods: len(pods), Nodes: len(nodes), Problems: []Problem{}}
	add := func(typ, ip, obj, format string, a ...any) {
		r.Problems = append(r.Problems, Problem{Type: typ, IP: ip, Object: obj, Detail: fmt.Sprintf(format, a...)})
	}
	podSet := map[string]bool{}
	for _, p := range pods {
		podSet[p.Namespace+"/"+p.Name] = true
	}
	nodeSet := map[string]bool{}
	for _, n := range nodes {
		nodeSet[n.Name] = true
	}
	handleByID := map[string]map[string]int{} // handle ID -> block -> count recorded
	for _, h := range st.Handles {
		handleByID[h.Spec.HandleID] = h.Spec.Block
	}
	affinity := map[string]bool{} // node|cidr
	for _, af := range st.Affinities {
		affinity[af.Spec.Node+"|"+af.Spec.CIDR] = true
	}
	var pools []netip.Prefix
	for _, p := range st.Pools {
		if pc, err := netip.ParsePrefix(p.Spec.CIDR); err == nil {
			pools = append(pools, pc)
		}
	}
	seen := map[string]map[string]int{} // handle ID -> block -> allocations found
	blocks := map[string]bool{}
	for i := range st.Blocks {
		b := &st.Blocks[i]
		obj := "IPAMBlock/" + b.Name
		blocks[b.Spec.CIDR] = true
		bc, err := netip.ParsePrefix(b.Spec.CIDR)
		if err != nil {
			add("invalid-block", "", obj, "cidr %q is not a CIDR", b.Spec.CIDR)
			continue
		}
		inPool := false
		for _, pc := range pools {
			inPool = inPool || pc.Contains(bc.Addr())
		}
		if !inPool {
			r.BlocksOutsidePool++
		}
		if want := 1 << (bc.Addr().BitLen() - bc.Bits()); len(b.Spec.Allocations) != want {
			add("invalid-block", "", obj, "has %d allocation slots, a /%d block has %d", len(b.Spec.Allocations), bc.Bits(), want)
		}
		if b.Spec.Affinity != nil {
			if node, ok := strings.CutPrefix(*b.Spec.Affinity, "host:"); ok && !affinity[node+"|"+b.Spec.CIDR] {
				add("affinity-mismatch", "", obj, "block is affine to node %s but no BlockAffinity records it", node)
			}
		}
		free := map[int]bool{}
		for _, o := range b.Spec.Unallocated {
			free[o] = true
		}
		for ord, idx := range b.Spec.Allocations {
			if idx == nil {
				continue
			}
			r.Allocations++
			ip := addrAt(bc, ord)
			if free[ord] {
				add("invalid-block", ip, obj, "ordinal %d is both allocated and on the free list", ord)
			}
			if *idx < 0 || *idx >= len(b.Spec.Attributes) {
				add("invalid-block", ip, obj, "allocation points at attribute %d of %d", *idx, len(b.Spec.Attributes))
				continue
			}
			attr := b.Spec.Attributes[*idx]
			if attr.HandleID != nil {
				h := *attr.HandleID
				if seen[h] == nil {
					seen[h] = map[string]int{}
				}
				seen[h][b.Spec.CIDR]++
				if _, ok := handleByID[h]; !ok {
					add("missing-handle", ip, obj, "allocated to handle %q, which has no IPAMHandle", h)
				}
			}
			ns, pod := attr.Secondary[attrNamespace], attr.Secondary[attrPod]
			node := attr.Secondary[attrNode]
			switch {
			case pod != "" && !podSet[ns+"/"+pod]:
				add("leaked-ip", ip, obj, "allocated to pod %s/%s, which does not exist", ns, pod)
			case pod == "" && node != "" && !nodeSet[node]:
				add("leaked-ip", ip, obj, "allocated to node %s, which does not exist", node)
			}
		}
	}
	for _, h := range st.Handles {
		obj := "IPAMHandle/" + h.Name
		total := 0
		for block, n := range h.Spec.Block {
			total += n
			if got := seen[h.Spec.HandleID][block]; got != n {
				add("handle-mismatch", "", obj, "records %d address(es) in block %s, the block has %d", n, block, got)
			}
		}
		if total == 0 && len(seen[h.Spec.HandleID]) == 0 {
			add("orphan-handle", "", obj, "handle %q holds no address", h.Spec.HandleID)
		}
	}
	for _, af := range st.Affinities {
		if af.Spec.State == "confirmed" && !blocks[af.Spec.CIDR] {
			add("affinity-without-block", "", "BlockAffinity/"+af.Name, "node %s holds block %s, which does not exist", af.Spec.Node, af.Spec.CIDR)
		}
	}
	sort.SliceStable(r.Problems, func(i, j int) bool {
		pi, pj := r.Problems[i], r.Problems[j]
		if pi.Type != pj.Type {
			return pi.Type < pj.Type
		}
		return pi.Object+pi.IP < pj.Object+pj.IP
	})
	return r
}

func addrAt(block netip.Prefix, ord int) string {
	a := block.Masked().Addr()
	for range ord {
		a = a.Next()
	}
	return a.String()
}

// renderCheckReport prints the report as calicoctl's narrative does.
func renderCheckReport(w io.Writer, r *CheckReport) {
	fmt.Fprintln(w, "Checking IPAM for inconsistencies...")
	fmt.Fprintf(w, "Found %d IPAM blocks.\n", r.Blocks)
	fmt.Fprintf(w, "IPAM blocks record %d allocations.\n", r.Allocations)
	fmt.Fprintf(w, "Found %d IP pools; %d blocks are outside every pool (left by deleted pools).\n", r.Pools, r.BlocksOutsidePool)
	fmt.Fprintf(w, "Found %d IPAM handles.\n", r.Handles)
	fmt.Fprintf(w, "Found %d pods and %d nodes.\n", r.Pods, r.Nodes)
	if len(r.Problems) > 0 {
		fmt.Fprintln(w)
		tw := newTabWriter(w)
		fmt.Fprintln(tw, "PROBLEM\tIP\tOBJECT\tDETAIL")
		for _, p := range r.Problems {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Type, selectorOr(p.IP, "-"), p.Object, p.Detail)
		}
		_ = tw.Flush()
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "Check complete; found %d problems.\n", len(r.Problems))
}

func (a *app) newIPAMCheckCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "check [-o json]",
		Short: "Check IPAM for leaked addresses and inconsistencies",
		Long: `Check the IPAM objects against each other and against the pods and nodes
that exist, writing nothing. Reported problems:
  leaked-ip               allocated to a pod (or node) that no longer exists
  missing-handle          allocated to a handle that has no IPAMHandle
  handle-mismatch         an IPAMHandle's per-block count disagrees with the blocks
  orphan-handle           an IPAMHandle that holds no address
  affinity-mismatch       a block affine to a node without a BlockAffinity
  affinity-without-block  a confirmed BlockAffinity whose block does not exist
  invalid-block           a block whose slots, free list or attributes disagree

Exits 1 when it finds problems (0 when IPAM is consistent), so it can gate
scripts. Release a leaked address with ginghamctl ipam release --ip ADDR.`,
		Example: `  ginghamctl ipam check
  ginghamctl ipam check -o json > report.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "" && output != "json" {
				return fmt.Errorf("unknown output format %q: ipam check prints text, or JSON with -o json", output)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var checker IPAMChecker = readOnlyChecker{c}
			if a.deps.Checker != nil {
				checker = a.deps.Checker(c)
			}
			r, err := checker.Check(cmd.Context())
			if err != nil {
				return fmt.Errorf("check IPAM: %w", err)
			}
			if output == "json" {
				b, err := json.MarshalIndent(r, "", "  ")
				if err != nil {
					return fmt.Errorf("render report: %w", err)
				}
				a.out("%s\n", b)
			} else {
				renderCheckReport(a.deps.Streams.Out, r)
			}
			if len(r.Problems) > 0 {
				a.errf("ipam check found %d problem(s)\n", len(r.Problems))
				return errReported
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "json: print the report as JSON")
	return cmd
}
