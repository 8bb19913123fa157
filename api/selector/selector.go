// Package selector parses and evaluates Calico's label selector language,
// as used by IPPool.nodeSelector and BGPPeer nodeSelector/peerSelector:
//
//	all()  has(k)  k == 'v'  k != 'v'  k in {'a', 'b'}  k not in {...}
//	k contains 'v'  k starts with 'v'  k ends with 'v'  !e  (e)  e && e  e || e
//
// The empty selector matches everything, like all(). global() is parsed
// (it matches everything) so callers can refuse it where Calico does.
package selector

import (
	"fmt"
	"strings"
	"unicode"
)

// Selector is a parsed selector.
type Selector struct {
	src  string
	root node
}

// String returns the selector as written.
func (s Selector) String() string { return s.src }

// Matches reports whether labels satisfy the selector.
func (s Selector) Matches(labels map[string]string) bool {
	if s.root == nil {
		return true
	}
	return s.root.eval(labels)
}

// UsesGlobal reports whether the selector contains global().
func (s Selector) UsesGlobal() bool { return strings.Contains(s.src, "global()") }

type node interface{ eval(map[string]string) bool }

type (
	allNode struct{}
	hasNode struct{ key string }
	notNode struct{ n node }
	andNode struct{ a, b node }
	orNode  struct{ a, b node }
	cmpNode struct{ key, op, val string }
	inNode  struct {
		key  string
		vals map[string]bool
		not  bool
	}
)

func (allNode) eval(map[string]string) bool     { return true }
func (n hasNode) eval(l map[string]string) bool { _, ok := l[n.key]; return ok }
func (n notNode) eval(l map[string]string) bool { return !n.n.eval(l) }
func (n andNode) eval(l map[string]string) bool { return n.a.eval(l) && n.b.eval(l) }
func (n orNode) eval(l map[string]string) bool  { return n.a.eval(l) || n.b.eval(l) }
func (n inNode) eval(l map[string]string) bool {
	v, ok := l[n.key]
	if n.not {
		return !ok || !n.vals[v]
	}
	return ok && n.vals[v]
}
func (n cmpNode) eval(l map[string]string) bool {
	v, ok := l[n.key]
	switch n.op {
	case "==":
		return ok && v == n.val
	case "!=":
		return !ok || v != n.val
	case "contains":
		return ok && strings.Contains(v, n.val)
	case "starts with":
		return ok && strings.HasPrefix(v, n.val)
	case "ends with":
		return ok && strings.HasSuffix(v, n.val)
	}
	return false
}

// Parse parses src. The error says where the selector stops making sense.
func Parse(src string) (Selector, error) {
	p := &parser{src: src}
	p.skip()
	if p.pos == len(src) {
		return Selector{src: src}, nil
	}
	n, err := p.or()
	if err != nil {
		return Selector{}, fmt.Errorf("selector %q: %w", src, err)
	}
	p.skip()
	if p.pos != len(src) {
		return Selector{}, fmt.Errorf("selector %q: unexpected %q at offset %d", src, src[p.pos:], p.pos)
	}
	return Selector{src: src, root: n}, nil
}

// MustParse is Parse for selectors known to be valid (constants, tests).
func MustParse(src string) Selector {
	s, err := Parse(src)
	if err != nil {
		panic(err)
	}
	return s
}

type parser struct {
	src string
	pos int
}

func (p *parser) skip() {
	for p.pos < len(p.src) && unicode.IsSpace(rune(p.src[p.pos])) {
		p.pos++
	}
}

func (p *parser) eat(tok string) bool {
	p.skip()
	if strings.HasPrefix(p.src[p.pos:], tok) {
		p.pos += len(tok)
		return true
	}
	return false
}

// eatWord eats a keyword only when it is not the prefix of a longer key.
func (p *parser) eatWord(w string) bool {
	p.skip()
	rest := p.src[p.pos:]
	if !strings.HasPrefix(rest, w) || (len(rest) > len(w) && isKeyChar(rest[len(w)])) {
		return false
	}
	p.pos += len(w)
	return true
}

func (p *parser) or() (node, error) {
	n, err := p.and()
	for err == nil && p.eat("||") {
		var b node
		if b, err = p.and(); err == nil {
			n = orNode{n, b}
		}
	}
	return n, err
}

func (p *parser) and() (node, error) {
	n, err := p.unary()
	for err == nil && p.eat("&&") {
		var b node
		if b, err = p.unary(); err == nil {
			n = andNode{n, b}
		}
	}
	return n, err
}

func (p *parser) unary() (node, error) {
	if p.eat("!") {
		n, err := p.unary()
		return notNode{n}, err
	}
	if p.eat("(") {
		n, err := p.or()
		if err != nil {
			return nil, err
		}
		if !p.eat(")") {
			return nil, p.errorf("missing ')'")
		}
		return n, nil
	}
	return p.term()
}

func isKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("./_-", c) >= 0
}

func (p *parser) key() (string, error) {
	p.skip()
	start := p.pos
	for p.pos < len(p.src) && isKeyChar(p.src[p.pos]) {
		p.pos++
	}
	if start == p.pos {
		return "", p.errorf("expected a label key")
	}
	return p.src[start:p.pos], nil
}

func (p *parser) value() (string, error) {
	p.skip()
	if p.pos >= len(p.src) || (p.src[p.pos] != '\'' && p.src[p.pos] != '"') {
		return "", p.errorf("expected a quoted value")
	}
	q := p.src[p.pos]
	end := strings.IndexByte(p.src[p.pos+1:], q)
	if end < 0 {
		return "", p.errorf("unterminated string")
	}
	v := p.src[p.pos+1 : p.pos+1+end]
	p.pos += end + 2
	return v, nil
}

func (p *parser) term() (node, error) {
	if p.eat("all()") || p.eat("global()") {
		return allNode{}, nil
	}
	if p.eat("has(") {
		k, err := p.key()
		if err != nil {
			return nil, err
		}
		if !p.eat(")") {
			return nil, p.errorf("missing ')' after has(%s", k)
		}
		return hasNode{k}, nil
	}
	k, err := p.key()
	if err != nil {
		return nil, err
	}
	for _, op := range []string{"==", "!="} {
		if p.eat(op) {
			v, err := p.value()
			return cmpNode{k, op, v}, err
		}
	}
	for _, op := range []string{"contains", "starts with", "ends with"} {
		words := strings.Fields(op)
		save := p.pos
		ok := true
		for _, w := range words {
			if !p.eatWord(w) {
				ok = false
				break
			}
		}
		if ok {
			v, err := p.value()
			return cmpNode{k, op, v}, err
		}
		p.pos = save
	}
	not := false
	save := p.pos
	if p.eatWord("not") {
		not = true
	}
	if !p.eatWord("in") {
		p.pos = save
		return nil, p.errorf("expected an operator (==, !=, in, not in, contains, starts with, ends with) after %q", k)
	}
	if !p.eat("{") {
		return nil, p.errorf("expected '{' after in")
	}
	vals := map[string]bool{}
	if !p.eat("}") {
		for {
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			vals[v] = true
			if p.eat("}") {
				break
			}
			if !p.eat(",") {
				return nil, p.errorf("expected ',' or '}' in set")
			}
		}
	}
	return inNode{k, vals, not}, nil
}

func (p *parser) errorf(format string, a ...any) error {
	return fmt.Errorf("%s at offset %d", fmt.Sprintf(format, a...), p.pos)
}
