package ctl

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	v1 "github.com/gingham-net/gingham/api/v1"
)

// column is one column of a resource table.
type column struct {
	Header string
	Value  func(runtime.Object) string
}

var nameColumn = column{"NAME", func(o runtime.Object) string {
	m, err := meta.Accessor(o)
	if err != nil {
		return "<unknown>"
	}
	return m.GetName()
}}

// col builds a column over one concrete type.
func col[T runtime.Object](header string, f func(T) string) column {
	return column{header, func(o runtime.Object) string {
		t, ok := o.(T)
		if !ok {
			return "<unknown>"
		}
		return f(t)
	}}
}

func encap(m v1.EncapMode) string {
	if m == "" {
		return string(v1.EncapNever)
	}
	return string(m)
}

func selectorOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func intPtr[T int | int32 | int64](p *T, def string) string {
	if p == nil {
		return def
	}
	return strconv.FormatInt(int64(*p), 10)
}

func timeOr(t *metav1.Time, def string) string {
	if t == nil {
		return def
	}
	return t.UTC().Format(time.RFC3339)
}

// IPPool: calicoctl's column sets (wide without ASSIGNMENTMODE, which gingham lacks).
var (
	poolCIDR     = col("CIDR", func(p *v1.IPPool) string { return p.Spec.CIDR })
	poolSelector = col("SELECTOR", func(p *v1.IPPool) string { return selectorOr(p.Spec.NodeSelector, v1.DefaultNodeSelector) })
	ipPoolNarrow = []column{nameColumn, poolCIDR, poolSelector}
	ipPoolWide   = []column{nameColumn, poolCIDR,
		col("NAT", func(p *v1.IPPool) string { return strconv.FormatBool(p.Spec.NATOutgoing) }),
		col("IPIPMODE", func(p *v1.IPPool) string { return encap(p.Spec.IPIPMode) }),
		col("VXLANMODE", func(p *v1.IPPool) string { return encap(p.Spec.VXLANMode) }),
		col("DISABLED", func(p *v1.IPPool) string { return strconv.FormatBool(p.Spec.Disabled) }),
		col("DISABLEBGPEXPORT", func(p *v1.IPPool) string { return strconv.FormatBool(p.Spec.DisableBGPExport) }),
		poolSelector,
	}
)

// BGPPeer: calicoctl's NAME PEERIP NODE ASN; NODE is (global) for a peer of every node.
var (
	peerIP   = col("PEERIP", func(p *v1.BGPPeer) string { return selectorOr(p.Spec.PeerIP, "(selector)") })
	peerNode = col("NODE", func(p *v1.BGPPeer) string {
		switch {
		case p.Spec.Node != "":
			return p.Spec.Node
		case p.Spec.NodeSelector != "":
			return p.Spec.NodeSelector
		}
		return "(global)"
	})
	peerASN       = col("ASN", func(p *v1.BGPPeer) string { return intPtr(p.Spec.ASNumber, "(from node)") })
	bgpPeerNarrow = []column{nameColumn, peerIP, peerNode, peerASN}
	bgpPeerWide   = []column{nameColumn, peerIP, peerNode, peerASN,
		col("PEERSELECTOR", func(p *v1.BGPPeer) string { return selectorOr(p.Spec.PeerSelector, "-") }),
		col("LOCALASN", func(p *v1.BGPPeer) string { return intPtr(p.Spec.LocalASNumber, "-") }),
		col("PASSWORD", func(p *v1.BGPPeer) string {
			if p.Spec.Password == nil || p.Spec.Password.SecretKeyRef == nil {
				return "-"
			}
			return "secret/" + p.Spec.Password.SecretKeyRef.Name
		}),
	}
)

// BGPConfiguration.
var (
	bgpConfigNarrow = []column{nameColumn,
		col("LOGSEVERITY", func(c *v1.BGPConfiguration) string { return selectorOr(c.Spec.LogSeverityScreen, "Info") }),
		col("MESHENABLED", func(c *v1.BGPConfiguration) string {
			if c.Spec.NodeToNodeMeshEnabled == nil {
				return "true"
			}
			return strconv.FormatBool(*c.Spec.NodeToNodeMeshEnabled)
		}),
		col("ASNUMBER", func(c *v1.BGPConfiguration) string { return intPtr(c.Spec.ASNumber, strconv.Itoa(v1.DefaultASNumber)) }),
	}
	bgpConfigWide = append(append([]column(nil), bgpConfigNarrow...),
		col("LISTENPORT", func(c *v1.BGPConfiguration) string {
			return intPtr(c.Spec.ListenPort, strconv.Itoa(v1.DefaultListenPort))
		}),
		col("SERVICECLUSTERIPS", func(c *v1.BGPConfiguration) string {
			var s []string
			for _, b := range c.Spec.ServiceClusterIPs {
				s = append(s, b.CIDR)
			}
			return selectorOr(strings.Join(s, ","), "-")
		}),
	)
)

// IPAMBlock.
func blockInUse(b *v1.IPAMBlock) int {
	n := 0
	for _, a := range b.Spec.Allocations {
		if a != nil {
			n++
		}
	}
	return n
}

var (
	blockAffinity = col("AFFINITY", func(b *v1.IPAMBlock) string {
		if b.Spec.Affinity == nil {
			return "(none)"
		}
		return *b.Spec.Affinity
	})
	blockNarrow = []column{nameColumn, col("CIDR", func(b *v1.IPAMBlock) string { return b.Spec.CIDR }), blockAffinity,
		col("IPSINUSE", func(b *v1.IPAMBlock) string { return strconv.Itoa(blockInUse(b)) })}
	blockWide = append(append([]column(nil), blockNarrow...),
		col("IPSFREE", func(b *v1.IPAMBlock) string { return strconv.Itoa(len(b.Spec.Unallocated)) }),
		col("DELETED", func(b *v1.IPAMBlock) string { return strconv.FormatBool(b.Spec.Deleted) }),
	)
)

// BlockAffinity.
var (
	affinityNarrow = []column{nameColumn,
		col("NODE", func(a *v1.BlockAffinity) string { return a.Spec.Node }),
		col("CIDR", func(a *v1.BlockAffinity) string { return a.Spec.CIDR }),
		col("STATE", func(a *v1.BlockAffinity) string { return string(a.Spec.State) }),
	}
	affinityWide = append(append([]column(nil), affinityNarrow...),
		col("TYPE", func(a *v1.BlockAffinity) string { return selectorOr(a.Spec.Type, "host") }),
		col("DELETED", func(a *v1.BlockAffinity) string { return strconv.FormatBool(a.Spec.Deleted) }),
	)
)

// IPAMHandle.
var (
	handleNarrow = []column{nameColumn,
		col("HANDLEID", func(h *v1.IPAMHandle) string { return h.Spec.HandleID }),
		col("IPS", func(h *v1.IPAMHandle) string {
			n := 0
			for _, c := range h.Spec.Block {
				n += c
			}
			return strconv.Itoa(n)
		}),
	}
	handleWide = append(append([]column(nil), handleNarrow...),
		col("BLOCKS", func(h *v1.IPAMHandle) string {
			var s []string
			for b, c := range h.Spec.Block {
				s = append(s, fmt.Sprintf("%s=%d", b, c))
			}
			sortStrings(s)
			return selectorOr(strings.Join(s, ","), "-")
		}),
		col("DELETED", func(h *v1.IPAMHandle) string { return strconv.FormatBool(h.Spec.Deleted) }),
	)
)

// IPAMConfiguration.
var (
	ipamConfigNarrow = []column{nameColumn,
		col("STRICTAFFINITY", func(c *v1.IPAMConfiguration) string { return strconv.FormatBool(c.Spec.StrictAffinity) }),
		col("MAXBLOCKSPERHOST", func(c *v1.IPAMConfiguration) string {
			if c.Spec.MaxBlocksPerHost == 0 {
				return "(default)"
			}
			return strconv.Itoa(int(c.Spec.MaxBlocksPerHost))
		}),
	}
	ipamConfigWide = append(append([]column(nil), ipamConfigNarrow...),
		col("AUTOALLOCATEBLOCKS", func(c *v1.IPAMConfiguration) string {
			if c.Spec.AutoAllocateBlocks == nil {
				return "true"
			}
			return strconv.FormatBool(*c.Spec.AutoAllocateBlocks)
		}),
	)
)

// GinghamNodeStatus.
func established(s *v1.GinghamNodeStatus) string {
	up := 0
	for _, p := range s.Status.Sessions {
		if p.State == "Established" {
			up++
		}
	}
	return fmt.Sprintf("%d/%d", up, len(s.Status.Sessions))
}

var (
	nodeStatusNarrow = []column{nameColumn,
		col("STATE", func(s *v1.GinghamNodeStatus) string { return selectorOr(s.Status.AgentState, "-") }),
		col("VERSION", func(s *v1.GinghamNodeStatus) string { return selectorOr(s.Status.AgentVersion, "-") }),
		col("ESTABLISHED", established),
	}
	nodeStatusWide = append(append([]column(nil), nodeStatusNarrow...),
		col("ROUTES", func(s *v1.GinghamNodeStatus) string { return strconv.FormatInt(s.Status.RoutesProgrammed, 10) }),
		col("LEARNED", func(s *v1.GinghamNodeStatus) string { return strconv.FormatInt(s.Status.RoutesLearned, 10) }),
		col("ADVERTISED", func(s *v1.GinghamNodeStatus) string { return strconv.FormatInt(s.Status.RoutesAdvertised, 10) }),
		col("UPDATED", func(s *v1.GinghamNodeStatus) string { return timeOr(s.Status.LastUpdated, "-") }),
	)
)
