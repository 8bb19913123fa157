package selector

import (
	"regexp"
	"testing"

	v1 "github.com/gingham-net/gingham/api/v1"
)

func TestParseAndMatch(t *testing.T) {
	labels := map[string]string{"rack": "r1", "role": "rr", "zone": "eu-west-1a"}
	tests := []struct {
		sel  string
		want bool
	}{
		{"", true},
		{"all()", true},
		{"has(rack)", true},
		{"!has(rack)", false},
		{"rack == 'r1'", true},
		{`rack == "r2"`, false},
		{"rack != 'r2'", true},
		{"missing != 'x'", true},
		{"rack in {'r1', 'r2'}", true},
		{"rack not in {'r1'}", false},
		{"missing not in {'r1'}", true},
		{"rack in {}", false},
		{"zone starts with 'eu-'", true},
		{"zone ends with '1a'", true},
		{"zone contains 'west'", true},
		{"rack == 'r1' && role == 'rr'", true},
		{"rack == 'r2' || role == 'rr'", true},
		{"!(rack == 'r2' || role == 'x') && has(zone)", true},
		{"(rack == 'r1') && !(role == 'rr')", false},
		{"kubernetes.io/hostname == 'r1'", false},
		{"containsx == 'a'", false},
	}
	re := regexp.MustCompile(v1.SelectorPattern)
	for _, tc := range tests {
		s, err := Parse(tc.sel)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.sel, err)
			continue
		}
		if got := s.Matches(labels); got != tc.want {
			t.Errorf("%q matches = %v, want %v", tc.sel, got, tc.want)
		}
		if !re.MatchString(tc.sel) {
			t.Errorf("API server pattern refuses valid selector %q", tc.sel)
		}
	}
}

func TestParseErrors(t *testing.T) {
	re := regexp.MustCompile(v1.SelectorPattern)
	for _, bad := range []string{
		"rack = 'r1'", "has(rack", "rack ==", "rack == r1", "rack in {'a' 'b'}", "&& has(x)",
		"has(x) &&", "(has(x)", "rack == 'r1' garbage", "rack in 'a'", "'unterminated",
	} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) succeeded, want error", bad)
		}
		if bad != "(has(x)" && re.MatchString(bad) {
			t.Errorf("API server pattern accepts malformed selector %q", bad)
		}
	}
}
