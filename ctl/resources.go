package ctl

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	v1 "github.com/gingham-net/gingham/api/v1"
)

// resource describes one gingham kind for the CLI: the names users type for
// it and the columns of its table.
type resource struct {
	Kind    string
	Plural  string
	Aliases []string // singular, plural, short names and Calico-ish spellings (lower case)
	New     func() runtime.Object
	Narrow  []column
	Wide    []column
}

// GVK is the kind's group, version and kind.
func (r *resource) GVK() schema.GroupVersionKind { return v1.GroupVersion.WithKind(r.Kind) }

// ListGVK is the kind's list kind.
func (r *resource) ListGVK() schema.GroupVersionKind {
	return v1.GroupVersion.WithKind(r.Kind + "List")
}

// registry is the set of kinds ginghamctl knows.
type registry struct {
	byKind  map[string]*resource
	byAlias map[string]*resource
	order   []*resource
}

func newRegistry() *registry {
	r := &registry{byKind: map[string]*resource{}, byAlias: map[string]*resource{}}
	for _, res := range []*resource{
		{Kind: "IPPool", Plural: "ippools", Aliases: []string{"ippool", "ippools", "ipp", "ipps", "pool", "pools"},
			New: func() runtime.Object { return &v1.IPPool{} }, Narrow: ipPoolNarrow, Wide: ipPoolWide},
		{Kind: "BGPPeer", Plural: "bgppeers", Aliases: []string{"bgppeer", "bgppeers", "bgpp", "bgpps", "peer", "peers"},
			New: func() runtime.Object { return &v1.BGPPeer{} }, Narrow: bgpPeerNarrow, Wide: bgpPeerWide},
		{Kind: "BGPConfiguration", Plural: "bgpconfigurations", Aliases: []string{"bgpconfiguration", "bgpconfigurations", "bgpconfig", "bgpconfigs"},
			New: func() runtime.Object { return &v1.BGPConfiguration{} }, Narrow: bgpConfigNarrow, Wide: bgpConfigWide},
		{Kind: "IPAMBlock", Plural: "ipamblocks", Aliases: []string{"ipamblock", "ipamblocks", "block", "blocks"},
			New: func() runtime.Object { return &v1.IPAMBlock{} }, Narrow: blockNarrow, Wide: blockWide},
		{Kind: "BlockAffinity", Plural: "blockaffinities", Aliases: []string{"blockaffinity", "blockaffinities", "affinity", "affinities"},
			New: func() runtime.Object { return &v1.BlockAffinity{} }, Narrow: affinityNarrow, Wide: affinityWide},
		{Kind: "IPAMHandle", Plural: "ipamhandles", Aliases: []string{"ipamhandle", "ipamhandles", "handle", "handles"},
			New: func() runtime.Object { return &v1.IPAMHandle{} }, Narrow: handleNarrow, Wide: handleWide},
		{Kind: "IPAMConfiguration", Plural: "ipamconfigurations", Aliases: []string{"ipamconfiguration", "ipamconfigurations", "ipamconfig", "ipamconfigs"},
			New: func() runtime.Object { return &v1.IPAMConfiguration{} }, Narrow: ipamConfigNarrow, Wide: ipamConfigWide},
		{Kind: "GinghamNodeStatus", Plural: "ginghamnodestatuses", Aliases: []string{"ginghamnodestatus", "ginghamnodestatuses", "nodestatus", "nodestatuses", "gns"},
			New: func() runtime.Object { return &v1.GinghamNodeStatus{} }, Narrow: nodeStatusNarrow, Wide: nodeStatusWide},
	} {
		r.byKind[res.Kind] = res
		r.order = append(r.order, res)
		for _, a := range res.Aliases {
			r.byAlias[a] = res
		}
	}
	return r
}

// lookup finds a kind by any of its names, case-insensitively.
func (r *registry) lookup(name string) (*resource, error) {
	if res, ok := r.byAlias[strings.ToLower(name)]; ok {
		return res, nil
	}
	if res, ok := r.byKind[name]; ok {
		return res, nil
	}
	return nil, fmt.Errorf("unknown resource type %q; known types: %s", name, strings.Join(r.names(), ", "))
}

// forGVK finds the kind of a decoded object.
func (r *registry) forGVK(gvk schema.GroupVersionKind) (*resource, error) {
	res, ok := r.byKind[gvk.Kind]
	if !ok || gvk.GroupVersion() != v1.GroupVersion {
		return nil, fmt.Errorf("unsupported kind %q of apiVersion %q: ginghamctl manages %s/%s %s",
			gvk.Kind, gvk.GroupVersion().String(), v1.GroupVersion.Group, v1.GroupVersion.Version, strings.Join(r.kinds(), ", "))
	}
	return res, nil
}

func (r *registry) kinds() []string {
	var out []string
	for _, res := range r.order {
		out = append(out, res.Kind)
	}
	return out
}

// names are the lower-case plural names, for help and completion.
func (r *registry) names() []string {
	var out []string
	for _, res := range r.order {
		out = append(out, res.Plural)
	}
	sort.Strings(out)
	return out
}

// aliasTable is the "names you can type" table of the help text.
func (r *registry) aliasTable() string {
	var b strings.Builder
	for _, res := range r.order {
		fmt.Fprintf(&b, "  %-20s %s\n", res.Kind, strings.Join(res.Aliases, ", "))
	}
	return b.String()
}
