package v1

import "strings"

// SelectorPattern is the shape of Calico's selector language that the API
// server enforces (CRD CEL rules match a field against it): terms such as
// all(), has(k), k == 'v', k != 'v', k in {'a','b'}, k not in {...},
// joined by && and ||, optionally negated and parenthesised; an empty
// selector means all(). The agent and ginghamctl parse selectors fully with
// api/selector, which also checks parentheses balance.
//
// hack/crdgen substitutes it for the %SELECTOR% placeholder in CEL rules.
var SelectorPattern = func() string {
	key := `[A-Za-z0-9./_-]+`
	val := `('[^']*'|"[^"]*")`
	term := `(all\(\)|global\(\)|has\(` + key + `\)|` + key + `(\s*(==|!=)\s*|\s+(contains|starts\s+with|ends\s+with)\s*)` + val +
		`|` + key + `\s+(not\s+)?in\s*\{\s*(` + val + `\s*(,\s*` + val + `\s*)*)?\})`
	operand := `(!\s*)*(\(\s*(!\s*)*)*` + term + `(\s*\))*`
	return `^\s*$|^\s*` + operand + `(\s*(&&|\|\|)\s*` + operand + `)*\s*$`
}()

// SelectorPlaceholder is replaced by SelectorPattern in generated CRDs.
const SelectorPlaceholder = "%SELECTOR%"

// ExpandSelectorPlaceholder returns rule with the selector pattern filled in.
func ExpandSelectorPlaceholder(rule string) string {
	return strings.ReplaceAll(rule, SelectorPlaceholder, SelectorPattern)
}

// SecretKeyRef names one key of a Secret in the agent's namespace.
type SecretKeyRef struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Key within the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key"`
}

// BGPPassword is where a TCP-MD5 password comes from.
type BGPPassword struct {
	// SecretKeyRef names the Secret key holding the password.
	// +optional
	SecretKeyRef *SecretKeyRef `json:"secretKeyRef,omitempty"`
}
