package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/gingham-net/gingham/test/kcluster"
)

// conformanceSkip is what this machine cannot run, with the reasons the
// report gives.
var (
	conformanceSkip    = kcluster.KernelSkip + `|\[sig-network\] DNS`
	conformanceSkipped = []string{
		"SCTP: this kernel has no SCTP (`socket(AF_INET, SOCK_STREAM, 132)`: protocol not supported).",
		"`[sig-network] DNS` specs: they query with the `jessie-dnsutils` image (dig), which cannot be pulled or built offline here. " +
			"Cluster DNS itself is deployed (CoreDNS) and used by the Service specs that resolve names.",
	}
)

// conformance runs Kubernetes' network conformance specs on a fresh
// cluster with gingham, then on one with the bridge baseline, and writes
// the report.
func conformance(ctx context.Context, o options, out string) error {
	focus := kcluster.GranularFocus + "|" + kcluster.ConformanceFocus
	var runs []kcluster.ConformanceRun
	for _, network := range []string{kcluster.NetworkGingham, kcluster.NetworkBridge} {
		path := filepath.Join(o.RunDir, "logs", "conformance-"+network+".json")
		var run kcluster.ConformanceRun
		if o.renderOnly {
			b, err := os.ReadFile(path)
			if err == nil {
				err = json.Unmarshal(b, &run)
			}
			if err != nil {
				return fmt.Errorf("render the report from %s: %w", path, err)
			}
		} else {
			run = conformanceRun(ctx, o, network, focus)
			if b, err := json.MarshalIndent(run, "", " "); err == nil {
				_ = os.WriteFile(path, b, 0o644)
			}
		}
		runs = append(runs, run)
		fmt.Printf("conformance %s: %d/%d passed in %s %s\n", network, run.Passed(), len(run.Results), run.Duration.Round(time.Second), run.Err)
	}
	cmd := "make test-conformance"
	report := kcluster.ConformanceReport(cmd, versions(ctx, o), focus, conformanceSkip, conformanceSkipped, runs)
	if err := kcluster.WriteFile(out, report); err != nil {
		return err
	}
	for _, r := range runs {
		if r.Err != "" || r.Passed() != len(r.Results) || len(r.Results) == 0 {
			return fmt.Errorf("%s: %d/%d passed %s (report in %s)", r.Network, r.Passed(), len(r.Results), r.Err, out)
		}
	}
	return nil
}

// conformanceRun brings a cluster up with network, runs the specs and
// takes it down.
func conformanceRun(ctx context.Context, o options, network, focus string) (run kcluster.ConformanceRun) {
	run = kcluster.ConformanceRun{Network: network, Nodes: o.Nodes, Started: time.Now()}
	defer func() { run.Duration = time.Since(run.Started) }()
	oo := o.Options
	oo.Network = network
	c, err := kcluster.Attach(oo)
	if err == nil {
		defer func() {
			if derr := kcluster.Down(context.Background(), oo); derr != nil && run.Err == "" {
				run.Err = "down: " + derr.Error()
			}
		}()
		err = c.Up(ctx)
	}
	if err == nil {
		if network == kcluster.NetworkBridge {
			err = c.InstallBridge(ctx)
		} else {
			err = c.InstallGingham(ctx, o.imageTag, nil)
		}
	}
	if err == nil {
		err = c.DeployDNS(ctx)
	}
	if err == nil {
		run.Results, err = c.E2E(ctx, filepath.Join(o.RunDir, "logs", "e2e-conformance-"+network), focus, conformanceSkip)
	}
	if err != nil {
		run.Err = err.Error()
	}
	return run
}

// versions are the report's component versions.
func versions(ctx context.Context, o options) []string {
	first := func(name string, args ...string) string {
		out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
		if err != nil {
			return "unknown (" + err.Error() + ")"
		}
		l, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return l
	}
	bin := func(n string) string { return filepath.Join(o.Bin, n) }
	return []string{
		"gingham image: `" + kcluster.ImageRepo + ":" + o.imageTag + "`",
		"Kubernetes (kubelet, kube-proxy, control plane, e2e.test): `" + first(bin("kubelet"), "--version") + "`",
		"containerd: `" + first(bin("containerd"), "--version") + "`",
		"runc: `" + first("runc", "--version") + "`",
		"FRR (ToRs): `" + first("dpkg-query", "-W", "-f=${Version}", "frr") + "`, BIRD (spine): `" + first("dpkg-query", "-W", "-f=${Version}", "bird2") + "`",
		"CNI reference plugins (baseline): `" + first("dpkg-query", "-W", "-f=${Version}", "containernetworking-plugins") + "`",
		"kernel: `" + first("uname", "-r") + "`",
	}
}
