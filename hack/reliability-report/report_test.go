package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/report.golden")

// TestReport parses testdata/input.json (passes, a failed subtest, a skip,
// a package that did not build,
// a test without a does-line, a line split over two output events, a
// package that timed out with a test running, a fuzz target, a non-JSON
// line) and renders it against testdata/report.golden.
func TestReport(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "input.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	if pass, fail, skip := rep.Counts(); pass != 4 || fail != 3 || skip != 1 {
		t.Errorf("counts: %d passed, %d failed, %d skipped; want 4, 3, 1", pass, fail, skip)
	}
	if !rep.Failed() || rep.Ignored != 1 {
		t.Errorf("Failed() = %v, ignored %d lines; want true, 1", rep.Failed(), rep.Ignored)
	}
	meta := Meta{Date: time.Date(2026, 11, 22, 5, 15, 0, 0, time.UTC), Command: "make test-reliability (GINGHAM_RELIABILITY_LONG=1)",
		Commit: "0123456789ab (test)", Machine: []string{"Machine: 2 CPUs (nproc), Test CPU", "Kernel: Linux 6.1.0", "Go: go1.26.8 linux/amd64"}}
	var got bytes.Buffer
	if err := Render(&got, meta, rep); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "report.golden")
	if *update {
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got.String()); diff != "" {
		t.Errorf("report mismatch (-want +got), go test -update to accept:\n%s", diff)
	}
}
