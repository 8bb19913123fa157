package ipip

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"

	"github.com/gingham-net/gingham/internal/nftx"
	"github.com/google/nftables/expr"
	"go.uber.org/zap"
)

// Names of the filter's nftables objects (family ip).
const (
	DefaultFilterTable = "gingham-ipip"
	FilterChain        = "ipip-input"
	FilterSet          = "ipip-peers"
)

// protoIPIP is IPPROTO_IPIP, the IPv4 protocol number of IP-in-IP.
const protoIPIP = 4

// Filter owns the nftables table that accepts IPIP only from known nodes:
//
//	table ip gingham-ipip {
//	  set ipip-peers { type ipv4_addr; elements = { <node addresses> } }
//	  chain ipip-input {
//	    type filter hook input priority filter; policy accept;
//	    ip protocol 4 ip saddr @ipip-peers accept
//	    ip protocol 4 counter drop
//	  }
//	}
//
// Packets that are not IPIP are never judged by it. Not safe for concurrent
// use.
type Filter struct {
	nsFd  int
	table string
	log   *zap.Logger
	last  []netip.Addr
	valid bool // last reflects what was written
}

// FilterOption configures a Filter.
type FilterOption func(*Filter)

// WithFilterTable names the owned table.
func WithFilterTable(name string) FilterOption { return func(f *Filter) { f.table = name } }

// WithFilterLogger sets the logger (default silent).
func WithFilterLogger(l *zap.Logger) FilterOption { return func(f *Filter) { f.log = l } }

// NewFilter returns a Filter for the namespace nsFd (< 0: the caller's).
func NewFilter(nsFd int, opts ...FilterOption) *Filter {
	f := &Filter{nsFd: nsFd, table: DefaultFilterTable, log: zap.NewNop()}
	for _, o := range opts {
		o(f)
	}
	return f
}

// Apply writes the table so that IPIP is accepted from peers only (nil
// peers: all IPIP is dropped). peers are normalised as PeerAddrs does; IPv6
// entries are ignored. force rewrites the table even when peers are
// unchanged (periodic resync repairs outside edits).
func (f *Filter) Apply(peers []netip.Addr, force bool) error {
	want := normalise(peers)
	if f.valid && !force && slices.Equal(want, f.last) {
		return nil
	}
	return f.write(want, true)
}

// Remove deletes the table if present (no pool uses IPIP and the kernel
// has no tunnel that could decapsulate).
func (f *Filter) Remove() error { return f.write(nil, false) }

func (f *Filter) write(peers []netip.Addr, present bool) error {
	var build func(c *nftables.Conn, t *nftables.Table) error
	if present {
		build = func(c *nftables.Conn, t *nftables.Table) error {
			set := &nftables.Set{Table: t, Name: FilterSet, KeyType: nftables.TypeIPAddr}
			elems := make([]nftables.SetElement, 0, len(peers))
			for _, p := range peers {
				elems = append(elems, nftables.SetElement{Key: p.AsSlice()})
			}
			if err := c.AddSet(set, elems); err != nil {
				return fmt.Errorf("add set: %w", err)
			}
			policy := nftables.ChainPolicyAccept
			ch := c.AddChain(&nftables.Chain{
				Name: FilterChain, Table: t, Type: nftables.ChainTypeFilter,
				Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &policy,
			})
			isIPIP := []expr.Any{
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 9, Len: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{protoIPIP}},
			}
			c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: append(slices.Clone(isIPIP),
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
				&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID},
				&expr.Verdict{Kind: expr.VerdictAccept},
			)})
			c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: append(slices.Clone(isIPIP),
				&expr.Counter{},
				&expr.Verdict{Kind: expr.VerdictDrop},
			)})
			return nil
		}
	}
	if err := nftx.Replace(f.nsFd, f.table, build); err != nil {
		f.valid = false
		return err
	}
	f.last, f.valid = peers, present
	f.log.Debug("ipip filter written", zap.String("table", f.table), zap.Bool("present", present), zap.Int("peers", len(peers)))
	return nil
}

// FilterState is the filter table as the kernel has it (tests, status).
type FilterState struct {
	Present bool
	Peers   []netip.Addr
	Dropped uint64 // packets counted by the drop rule
}

// State reads the table back.
func (f *Filter) State() (FilterState, error) {
	var st FilterState
	c, err := nftx.Open(f.nsFd)
	if err != nil {
		return st, err
	}
	t, err := nftx.Find(c, f.table)
	if err != nil || t == nil {
		return st, err
	}
	st.Present = true
	set, err := c.GetSetByName(t, FilterSet)
	if err != nil {
		return st, fmt.Errorf("read set %s: %w", FilterSet, err)
	}
	elems, err := c.GetSetElements(set)
	if err != nil {
		return st, fmt.Errorf("read set %s: %w", FilterSet, err)
	}
	for _, e := range elems {
		if a, ok := netip.AddrFromSlice(e.Key); ok {
			st.Peers = append(st.Peers, a)
		}
	}
	slices.SortFunc(st.Peers, netip.Addr.Compare)
	rules, err := c.GetRules(t, &nftables.Chain{Name: FilterChain, Table: t})
	if err != nil {
		return st, fmt.Errorf("read chain %s: %w", FilterChain, err)
	}
	for _, r := range rules {
		for _, e := range r.Exprs {
			if ct, ok := e.(*expr.Counter); ok {
				st.Dropped += ct.Packets
			}
		}
	}
	return st, nil
}

func normalise(peers []netip.Addr) []netip.Addr {
	out := make([]netip.Addr, 0, len(peers))
	for _, p := range peers {
		if p.Is4() || p.Is4In6() {
			out = append(out, p.Unmap())
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}
