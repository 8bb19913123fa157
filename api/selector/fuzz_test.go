package selector

import "testing"

// FuzzParse parses arbitrary selectors: never a panic, and a parsed
// selector evaluates on any labels.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"all()", "has(a) && !(b in {'x','y'})", "a starts with 'b' || c != \"d\"", "((", "a not in {}", ""} {
		f.Add(s, "a", "x")
	}
	f.Fuzz(func(t *testing.T, sel, key, val string) {
		s, err := Parse(sel)
		if err != nil {
			return
		}
		_ = s.Matches(map[string]string{key: val})
		_ = s.Matches(nil)
	})
}
