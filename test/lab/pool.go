package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/test/labnet"
)

// The second pool the lab adds through ginghamctl.
const (
	pool2Name = "lab-pool-2"
	pool2CIDR = "10.245.0.0/16"
)

const pool2YAML = `apiVersion: gingham.dev/v1
kind: IPPool
metadata:
  name: ` + pool2Name + `
spec:
  cidr: ` + pool2CIDR + `
  blockSize: 26
  ipipMode: Never
  natOutgoing: false
`

// poolEdit adds a second pool with ginghamctl, puts a pod on it in each
// rack, then turns its natOutgoing on and shows the node's nftables rules
// before and after.
func poolEdit(ctx context.Context, p *progress, lab *labnet.Lab, c client.Client, o options, pods []*labnet.Pod) {
	file := o.file("pool2.yaml")
	if err := os.WriteFile(file, []byte(pool2YAML), 0o644); err != nil {
		p.fail("%v", err)
		return
	}
	fmt.Printf("  $ ginghamctl apply -f %s\n", file)
	out, err := ginghamctl(ctx, o, "apply", "-f", file)
	fmt.Println(indent(out))
	if err != nil {
		fmt.Printf("  ginghamctl apply failed (%v): creating the pool through the API instead\n", err)
		bs := 26
		pool := &v1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: pool2Name},
			Spec: v1.IPPoolSpec{CIDR: pool2CIDR, BlockSize: &bs, IPIPMode: v1.EncapNever}}
		if err := c.Create(ctx, pool); err != nil {
			p.fail("create pool: %v", err)
			return
		}
	}
	fmt.Println("  $ ginghamctl get ippools -o wide")
	out, _ = ginghamctl(ctx, o, "get", "ippools", "-o", "wide")
	fmt.Println(indent(out))

	want := netip.MustParsePrefix(pool2CIDR)
	var onPool []*labnet.Pod
	for _, n := range firstNodePerRack(lab) {
		pod, err := lab.CreatePod(ctx, c, labnet.PodRequest{Node: n, Namespace: "default", Name: n + "-pool2",
			Annotations: map[string]string{"gingham.dev/ipv4pools": `["` + pool2Name + `"]`}, CNI: o.cniOptions(lab)})
		if err != nil {
			fmt.Printf("  pod on %s: %v\n", n, err)
			continue
		}
		fmt.Printf("  pod %-20s on %-12s %s (in %s: %v)\n", pod.Name, n, pod.IP, pool2Name, want.Contains(pod.IP))
		onPool = append(onPool, pod)
	}
	if len(onPool) > 0 && len(pods) > 0 {
		m, err := labnet.CheckMatrix(ctx, append(append([]*labnet.Pod{}, onPool...), pods[0]), nil)
		if err == nil {
			fmt.Println("  connectivity of the new pool's pods:")
			fmt.Println(indent(m.String()))
		}
	}

	node := lab.Spec.Nodes[0].Name
	before := nftRuleset(ctx, lab, node)
	fmt.Printf("  nftables of %s before (natOutgoing off on %s):\n%s\n", node, pool2Name, indent(before))
	patch := `{"spec":{"natOutgoing":true}}`
	fmt.Printf("  $ ginghamctl patch ippool %s -p '%s'\n", pool2Name, patch)
	out, err = ginghamctl(ctx, o, "patch", "ippool", pool2Name, "-p", patch)
	fmt.Println(indent(out))
	if err != nil {
		fmt.Printf("  ginghamctl patch failed (%v): patching through the API instead\n", err)
		pool := &v1.IPPool{}
		perr := c.Get(ctx, client.ObjectKey{Name: pool2Name}, pool)
		if perr == nil {
			pool.Spec.NATOutgoing = true
			perr = c.Update(ctx, pool)
		}
		if perr != nil {
			p.fail("patch pool: %v", perr)
			return
		}
	}
	// The effect: traffic from the pool to outside all pools is masqueraded.
	rule := "ip saddr " + pool2CIDR + " masquerade"
	after := ""
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if after = nftRuleset(ctx, lab, node); strings.Contains(after, rule) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	fmt.Printf("  nftables of %s after:\n%s\n", node, indent(after))
	switch {
	case len(onPool) == 0:
		p.fail("no pod could be placed on %s", pool2Name)
	case strings.Contains(before, rule):
		p.fail("%q was there before natOutgoing was turned on", rule)
	case !strings.Contains(after, rule):
		p.fail("natOutgoing on %s had no visible effect on %s within 15s (no %q)", pool2Name, node, rule)
	default:
		p.ok("pods on %s; %q appeared on %s", pool2Name, rule, node)
	}
}

// firstNodePerRack returns the first node of every segment.
func firstNodePerRack(lab *labnet.Lab) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range lab.Spec.Nodes {
		if !seen[n.Segment] {
			seen[n.Segment] = true
			out = append(out, n.Name)
		}
	}
	return out
}

// nftRuleset returns the node's nftables ruleset.
func nftRuleset(ctx context.Context, lab *labnet.Lab, node string) string {
	out, err := lab.Run(ctx, node, "nft", "list", "ruleset")
	if err != nil {
		return err.Error()
	}
	if strings.TrimSpace(out) == "" {
		return "(empty)"
	}
	return out
}
