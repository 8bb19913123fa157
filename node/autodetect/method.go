package autodetect

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// Kind is an autodetection method.
type Kind int

// The methods, named as in Calico.
const (
	FirstFound Kind = iota
	Interface
	SkipInterface
	CIDR
	CanReach
	KubernetesInternalIP
)

// Method names and prefixes as written in GINGHAM_IP_AUTODETECTION_METHOD.
const (
	nameFirstFound  = "first-found"
	nameInternalIP  = "kubernetes-internal-ip"
	prefixIface     = "interface="
	prefixSkipIface = "skip-interface="
	prefixCIDR      = "cidr="
	prefixCanReach  = "can-reach="
)

// DefaultExclusions are the interface names first-found and skip-interface
// never take an address from (Calico's list): container bridges, veths,
// tunnels and the CNI's own devices.
var DefaultExclusions = []string{
	"^docker.*", "^cbr.*", "^dummy.*", "^virbr.*", "^lxcbr.*", "^veth.*", "^lo",
	"^cali.*", "^tunl.*", "^flannel.*", "^kube-ipvs.*", "^cni.*",
	`^vxlan\.calico.*`, `^vxlan-v6\.calico.*`, `^wireguard\.cali.*`, `^wg-v6\.cali.*`,
	"^nodelocaldns.*",
}

// Method is a parsed autodetection method.
type Method struct {
	Kind    Kind
	Include []*regexp.Regexp // Interface: names to take addresses from
	Exclude []*regexp.Regexp // FirstFound, SkipInterface: names never used
	CIDRs   []netip.Prefix   // CIDR
	Target  string           // CanReach: an IP address or a host name
	text    string
}

// String is the method as written.
func (m Method) String() string { return m.text }

// Parse reads a method; "" is first-found. Errors say what is wrong with
// the value (the caller names the setting).
func Parse(s string) (Method, error) {
	s = strings.TrimSpace(s)
	m := Method{text: s}
	var err error
	switch {
	case s == "" || s == nameFirstFound:
		m.Kind, m.text = FirstFound, nameFirstFound
		m.Exclude = mustCompile(DefaultExclusions)
	case s == nameInternalIP:
		m.Kind = KubernetesInternalIP
	case strings.HasPrefix(s, prefixIface):
		m.Kind = Interface
		m.Include, err = compileList(strings.TrimPrefix(s, prefixIface))
	case strings.HasPrefix(s, prefixSkipIface):
		m.Kind = SkipInterface
		var skip []*regexp.Regexp
		skip, err = compileList(strings.TrimPrefix(s, prefixSkipIface))
		m.Exclude = append(mustCompile(DefaultExclusions), skip...)
	case strings.HasPrefix(s, prefixCIDR):
		m.Kind = CIDR
		m.CIDRs, err = parseCIDRs(strings.TrimPrefix(s, prefixCIDR))
	case strings.HasPrefix(s, prefixCanReach):
		m.Kind = CanReach
		if m.Target = strings.TrimSpace(strings.TrimPrefix(s, prefixCanReach)); m.Target == "" {
			err = errors.New("can-reach= needs an IP address or a host name")
		}
	default:
		err = fmt.Errorf("%q is not a method: want first-found, interface=<regex,...>, skip-interface=<regex,...>, cidr=<cidr,...>, can-reach=<ip or name> or kubernetes-internal-ip", s)
	}
	if err != nil {
		return Method{}, err
	}
	return m, nil
}

var listSep = regexp.MustCompile(`\s*,\s*`)

func compileList(s string) ([]*regexp.Regexp, error) {
	var out []*regexp.Regexp
	for _, expr := range listSep.Split(strings.TrimSpace(s), -1) {
		if expr == "" {
			return nil, fmt.Errorf("empty interface regular expression in %q", s)
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, fmt.Errorf("interface regular expression %q: %w", expr, err)
		}
		out = append(out, re)
	}
	return out, nil
}

func mustCompile(exprs []string) []*regexp.Regexp {
	out := make([]*regexp.Regexp, len(exprs))
	for i, e := range exprs {
		out[i] = regexp.MustCompile(e)
	}
	return out
}

func parseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, c := range listSep.Split(strings.TrimSpace(s), -1) {
		p, err := netip.ParsePrefix(c)
		if err != nil || !p.Addr().Is4() {
			return nil, fmt.Errorf("cidr %q is not an IPv4 CIDR", c)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
