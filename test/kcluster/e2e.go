package kcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Kubernetes' own network tests, as the e2e binary names them.
const (
	// GranularFocus selects [sig-network] Networking Granular Checks: Pods.
	GranularFocus = `\[sig-network\] Networking Granular Checks: Pods`
	// ConformanceFocus selects every [sig-network] conformance spec.
	ConformanceFocus = `\[sig-network\].*\[Conformance\]`
	// KernelSkip skips what this kernel cannot run: it has no SCTP.
	KernelSkip = `SCTP|\[Feature:SCTP`
)

// SpecResult is one e2e spec's outcome.
type SpecResult struct {
	Name     string
	State    string // passed, failed, skipped, pending, ...
	Duration time.Duration
	Failure  string
}

// E2E runs the upstream e2e binary (bin/e2e.test) against the cluster
// with a focus and a skip regular expression, writing its logs and JSON
// report into dir, and returns the result of every spec that ran (skipped
// specs outside the focus are left out).
func (c *Cluster) E2E(ctx context.Context, dir, focus, skip string) ([]SpecResult, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("e2e: %w", err)
	}
	report := filepath.Join(dir, "report.json")
	args := []string{
		"--provider=local", "--kubeconfig=" + c.AdminKubeconfig(),
		"--kubectl-path=" + filepath.Join(c.O.Bin, "kubectl"),
		"--report-dir=" + dir, "--ginkgo.json-report=" + report,
		"--ginkgo.focus=" + focus, "--ginkgo.skip=" + skip,
		"--ginkgo.no-color", "--ginkgo.timeout=2h", "--dump-logs-on-failure=false",
	}
	log, err := os.Create(filepath.Join(dir, "e2e.log"))
	if err != nil {
		return nil, fmt.Errorf("e2e: %w", err)
	}
	defer log.Close()
	cmd := exec.CommandContext(ctx, filepath.Join(c.O.Bin, "e2e.test"), args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Dir = dir
	runErr := cmd.Run()
	res, err := ParseGinkgoReport(report)
	if err != nil {
		return nil, fmt.Errorf("e2e (%v; log %s): %w", runErr, log.Name(), err)
	}
	return res, nil
}

// ParseGinkgoReport reads a Ginkgo v2 JSON report: every spec that was
// not skipped by the focus, in report order.
func ParseGinkgoReport(path string) ([]SpecResult, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ginkgo report: %w", err)
	}
	var reports []struct {
		SpecReports []struct {
			ContainerHierarchyTexts []string
			LeafNodeText            string
			LeafNodeType            string
			State                   string
			RunTime                 time.Duration
			Failure                 struct{ Message string }
		}
	}
	if err := json.Unmarshal(b, &reports); err != nil {
		return nil, fmt.Errorf("ginkgo report %s: %w", path, err)
	}
	var out []SpecResult
	for _, r := range reports {
		for _, s := range r.SpecReports {
			if s.LeafNodeType != "It" || s.State == "skipped" {
				continue
			}
			name := strings.TrimSpace(strings.Join(append(s.ContainerHierarchyTexts, s.LeafNodeText), " "))
			out = append(out, SpecResult{Name: name, State: s.State, Duration: s.RunTime.Round(100 * time.Millisecond),
				Failure: firstLine(s.Failure.Message)})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
