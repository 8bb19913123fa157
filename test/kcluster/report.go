package kcluster

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// ConformanceRun is one network's e2e run for docs/conformance.md.
type ConformanceRun struct {
	Network  string // NetworkGingham or NetworkBridge
	Nodes    int
	Started  time.Time
	Duration time.Duration
	Results  []SpecResult
	Err      string // the run's own failure (cluster, install), if any
}

// Passed counts passed specs.
func (r ConformanceRun) Passed() int {
	n := 0
	for _, s := range r.Results {
		if s.State == "passed" {
			n++
		}
	}
	return n
}

// ConformanceReport renders docs/conformance.md: per spec, gingham's
// result and time beside the bridge baseline's, with the command and the
// versions.
func ConformanceReport(command string, versions []string, focus, skip string, skipped []string, runs []ConformanceRun) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	p("# Kubernetes network conformance")
	p("")
	p("Kubernetes' own e2e tests (the upstream `e2e.test` binary) against a real cluster on this machine")
	p("(`make cluster`'s: control plane, nodes with containerd + kubelet + kube-proxy in nftables mode, two")
	p("racks behind FRR ToRs), once with gingham installed from `deploy/`, once with the CNI reference")
	p("`bridge` + `host-local` plugins as the baseline, so a failure is known to be gingham's or the harness's.")
	p("Written by `make test-conformance`; `make test` runs the Granular Checks (`TestCluster`).")
	p("")
	p("Command: `%s`  ", command)
	p("Focus: `%s`  ", focus)
	p("Skip: `%s`", skip)
	p("")
	for _, s := range skipped {
		p("- %s", s)
	}
	p("")
	p("| run | nodes | started | duration | passed | result |")
	p("|---|---|---|---|---|---|")
	for _, r := range runs {
		res := "ok"
		if r.Err != "" {
			res = "error: " + r.Err
		} else if r.Passed() != len(r.Results) {
			res = fmt.Sprintf("%d failed", len(r.Results)-r.Passed())
		}
		p("| %s | %d | %s | %s | %d/%d | %s |", r.Network, r.Nodes, r.Started.UTC().Format(time.RFC3339), r.Duration.Round(time.Second), r.Passed(), len(r.Results), res)
	}
	p("")
	names := map[string]bool{}
	byRun := make([]map[string]SpecResult, len(runs))
	for i, r := range runs {
		byRun[i] = map[string]SpecResult{}
		for _, s := range r.Results {
			names[s.Name] = true
			byRun[i][s.Name] = s
		}
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	head, sep := "| spec |", "|---|"
	for _, r := range runs {
		head += fmt.Sprintf(" %s | time |", r.Network)
		sep += "---|---|"
	}
	p("%s", head)
	p("%s", sep)
	for _, n := range sorted {
		row := "| " + strings.ReplaceAll(n, "|", `\|`) + " |"
		for i := range runs {
			s, ok := byRun[i][n]
			if !ok {
				row += " not run | |"
				continue
			}
			row += fmt.Sprintf(" %s | %s |", s.State, s.Duration)
		}
		p("%s", row)
	}
	var failures []string
	for _, r := range runs {
		for _, s := range r.Results {
			if s.State != "passed" {
				failures = append(failures, fmt.Sprintf("- %s, %s: %s — %s", r.Network, s.Name, s.State, s.Failure))
			}
		}
	}
	if len(failures) > 0 {
		p("")
		p("## Failures")
		p("")
		for _, f := range failures {
			p("%s", f)
		}
	}
	p("")
	p("## Versions")
	p("")
	for _, v := range versions {
		p("- %s", v)
	}
	return b.String()
}

// WriteFile writes s to path atomically.
func WriteFile(path, s string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
