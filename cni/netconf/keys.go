package netconf

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
)

// runtimeKeys are top-level keys a plugin receives without declaring them
// in its struct: libcni injects runtimeConfig (capability arguments) and,
// on GC, both spellings of the valid attachments; "args" is the CNI
// conventions' place for runtime arguments. The spec's other keys
// (cniVersion, name, type, ipam, dns, capabilities, prevResult,
// cni.dev/valid-attachments) are fields of types.PluginConf, which every
// plugin struct embeds.
var runtimeKeys = []string{"runtimeConfig", "args", "cni.dev/attachments"}

// Keys returns the JSON keys a value of struct type v decodes: the names of
// its json tags, embedded structs included (the shallower field wins, as in
// encoding/json), sorted.
func Keys(v any) []string {
	set := map[string]bool{}
	collectKeys(reflect.TypeOf(v), set)
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func collectKeys(t reflect.Type, set map[string]bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		switch {
		case name == "-":
		case f.Anonymous && name == "":
			collectKeys(f.Type, set)
		case !f.IsExported():
		case name == "":
			set[f.Name] = true
		default:
			set[name] = true
		}
	}
}

// CheckPlugin refuses the top-level keys of a plugin configuration that
// neither conf's struct (see Keys) nor the runtime (runtimeKeys) accounts for.
func CheckPlugin(doc []byte, conf any) error {
	return check(doc, "", append(Keys(conf), runtimeKeys...))
}

// CheckSection refuses the keys of the object at key section of doc (e.g.
// "ipam", "kubernetes") that the struct of conf does not decode. A missing
// or null section passes.
func CheckSection(doc []byte, section string, conf any) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(doc, &top); err != nil {
		return fmt.Errorf("parse network configuration: %w", err)
	}
	raw, ok := top[section]
	if !ok || string(raw) == "null" {
		return nil
	}
	return check(raw, section+".", Keys(conf))
}

func check(doc []byte, path string, allowed []string) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(doc, &obj); err != nil {
		return fmt.Errorf("parse network configuration%s: %w", where(path), err)
	}
	var unknown []string
	for k := range obj {
		if !slices.Contains(allowed, k) {
			unknown = append(unknown, path+k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	return fmt.Errorf("network configuration: unknown key %s (accepted%s: %s)",
		strings.Join(quoteAll(unknown), ", "), where(path), strings.Join(allowed, ", "))
}

func where(path string) string {
	if path == "" {
		return ""
	}
	return " in " + strings.TrimSuffix(path, ".")
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = fmt.Sprintf("%q", v)
	}
	return out
}

// HasKey reports whether the top level of doc has key (a JSON null
// counts: the key was sent).
func HasKey(doc []byte, key string) bool {
	var top map[string]json.RawMessage
	if json.Unmarshal(doc, &top) != nil {
		return false
	}
	_, ok := top[key]
	return ok
}
