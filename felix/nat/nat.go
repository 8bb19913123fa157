// Package nat programs natOutgoing: traffic from pools with natOutgoing to
// destinations outside all pools is masqueraded.
//
// Invariants:
//   - All rules live in one nftables table the product owns ("ip gingham" by
//     default); no other table or chain is read or written.
//   - The table is replaced atomically: one netlink batch adds it, deletes
//     it and recreates it with its full contents, so packets never see a
//     half-written ruleset and stale rules cannot survive.
//   - When no pool needs NAT the table is removed (idempotently).
//   - Rules are pure data (Rules), rendered from the pool list alone.
package nat

import (
	"encoding/binary"
	"net/netip"
	"slices"

	"github.com/google/nftables"

	"github.com/gingham-net/gingham/internal/nftx"
	"github.com/google/nftables/expr"
	"go.uber.org/zap"
)

// DefaultTable is the nftables table gingham owns (family ip).
const DefaultTable = "gingham"

// ChainName is the postrouting NAT chain inside the table.
const ChainName = "nat-outgoing"

// Pool is what NAT needs to know of an IP pool.
type Pool struct {
	CIDR        netip.Prefix
	NATOutgoing bool
}

// Rule is one rendered rule: return when the destination is in Dst, or
// masquerade when the source is in Src.
type Rule struct {
	Dst        netip.Prefix // "ip daddr Dst return"
	Src        netip.Prefix // "ip saddr Src masquerade"
	Masquerade bool
}

// Rules renders the chain for pools; nil means no table is needed. Only IPv4
// pools are considered. Destinations inside any pool (NAT or not, disabled
// or not) are never masqueraded.
func Rules(pools []Pool) []Rule {
	var dsts, srcs []netip.Prefix
	for _, p := range pools {
		if !p.CIDR.Addr().Is4() {
			continue
		}
		dsts = append(dsts, p.CIDR.Masked())
		if p.NATOutgoing {
			srcs = append(srcs, p.CIDR.Masked())
		}
	}
	if len(srcs) == 0 {
		return nil
	}
	cmpP := func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	}
	slices.SortFunc(dsts, cmpP)
	slices.SortFunc(srcs, cmpP)
	var out []Rule
	for _, d := range slices.Compact(dsts) {
		out = append(out, Rule{Dst: d})
	}
	for _, s := range slices.Compact(srcs) {
		out = append(out, Rule{Src: s, Masquerade: true})
	}
	return out
}

// Manager owns the table. Not safe for concurrent use.
type Manager struct {
	nsFd  int
	table string
	log   *zap.Logger
	last  []Rule
	valid bool // last reflects what was written
}

// Option configures a Manager.
type Option func(*Manager)

// WithTable names the owned table.
func WithTable(name string) Option { return func(m *Manager) { m.table = name } }

// WithLogger sets the logger (default silent).
func WithLogger(l *zap.Logger) Option { return func(m *Manager) { m.log = l } }

// New returns a Manager for the namespace nsFd (< 0: the caller's).
func New(nsFd int, opts ...Option) *Manager {
	m := &Manager{nsFd: nsFd, table: DefaultTable, log: zap.NewNop()}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Apply makes the table match pools. force rewrites it even when the rules
// are unchanged (periodic resync repairs outside edits).
func (m *Manager) Apply(pools []Pool, force bool) error {
	rules := Rules(pools)
	if m.valid && !force && slices.Equal(rules, m.last) {
		return nil
	}
	var build func(c *nftables.Conn, t *nftables.Table) error
	if len(rules) > 0 {
		build = func(c *nftables.Conn, t *nftables.Table) error {
			ch := c.AddChain(&nftables.Chain{
				Name: ChainName, Table: t, Type: nftables.ChainTypeNAT,
				Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource,
			})
			for _, r := range rules {
				c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs(r)})
			}
			return nil
		}
	}
	if err := nftx.Replace(m.nsFd, m.table, build); err != nil {
		m.valid = false
		return err
	}
	m.last, m.valid = rules, true
	m.log.Debug("nat table written", zap.String("table", m.table), zap.Int("rules", len(rules)))
	return nil
}

// Remove deletes the table if present.
func (m *Manager) Remove() error { return m.Apply(nil, true) }

func exprs(r Rule) []expr.Any {
	p := r.Dst
	offset := uint32(16) // IPv4 destination address
	if r.Masquerade {
		p, offset = r.Src, 12
	}
	mask := make([]byte, 4)
	binary.BigEndian.PutUint32(mask, ^uint32(0)<<(32-p.Bits()))
	if p.Bits() == 0 {
		mask = []byte{0, 0, 0, 0}
	}
	e := []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Addr().AsSlice()},
	}
	if r.Masquerade {
		return append(e, &expr.Masq{})
	}
	return append(e, &expr.Verdict{Kind: expr.VerdictReturn})
}

// Present reports whether the owned table exists (tests, status).
func (m *Manager) Present() (bool, error) {
	c, err := nftx.Open(m.nsFd)
	if err != nil {
		return false, err
	}
	t, err := nftx.Find(c, m.table)
	return t != nil, err
}
