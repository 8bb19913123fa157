// Command reliability-report turns the go test -json output of
// make test-reliability (issue 9) into docs/reliability.md: per test and
// subtest what it did (its "reliability: does: …" log line), its figures
// ("reliability: figure: <name>: <value>"), pass/fail/skip and duration,
// with the date, the machine and the commit.
//
// Usage:
//
//	go test -json ... | go run ./hack/reliability-report [-out docs/reliability.md] [-check]
//	go run ./hack/reliability-report -in results.json -out docs/reliability.md
//
// With -check it exits 1 (after writing the report) when a test or
// package failed or did not finish.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

func main() {
	in := flag.String("in", "-", "go test -json output to read (- for standard input); several runs may be concatenated")
	out := flag.String("out", "docs/reliability.md", "report to write")
	command := flag.String("command", "make test-reliability", "how the tests were run, for the report")
	commit := flag.String("commit", "", "commit to report (default: git describe of the working tree)")
	check := flag.Bool("check", false, "exit 1 when a test or package failed or did not finish")
	flag.Parse()

	raw := ""
	if *in != "-" {
		raw = *in
	}
	if err := run(*in, *out, Meta{Command: *command, Commit: *commit, Raw: raw}, *check); err != nil {
		fmt.Fprintf(os.Stderr, "reliability-report: %v\n", err)
		os.Exit(1)
	}
}

var errFailed = fmt.Errorf("tests failed (see the report)")

func run(in, out string, meta Meta, check bool) error {
	var r io.Reader = os.Stdin
	if in != "-" {
		f, err := os.Open(in)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	rep, err := Parse(r)
	if err != nil {
		return err
	}
	if len(rep.Tests) == 0 {
		return fmt.Errorf("no test results in the input (%d lines that are not go test -json events)", rep.Ignored)
	}
	if meta.Commit == "" {
		meta.Commit = gitCommit()
	}
	meta.Date, meta.Machine = time.Now(), machine()
	var buf bytes.Buffer
	if err := Render(&buf, meta, rep); err != nil {
		return err
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return err
	}
	pass, fail, skip := rep.Counts()
	fmt.Fprintf(os.Stderr, "reliability-report: %s: %d passed, %d failed, %d skipped\n", out, pass, fail, skip)
	if check && rep.Failed() {
		return errFailed
	}
	return nil
}

// gitCommit describes HEAD, noting uncommitted changes.
func gitCommit() string {
	head, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown (not a git checkout)"
	}
	s := strings.TrimSpace(string(head))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		s += ", with uncommitted changes in the working tree"
	}
	return s
}

// machine describes where the tests ran.
func machine() []string {
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			return "unknown"
		}
		return strings.TrimSpace(string(b))
	}
	cpu := "unknown"
	for _, l := range strings.Split(read("/proc/cpuinfo"), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			cpu = strings.TrimSpace(v)
			break
		}
	}
	goVersion := runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
	if b, err := exec.Command("go", "version").Output(); err == nil {
		goVersion = strings.TrimPrefix(strings.TrimSpace(string(b)), "go version ")
	}
	load := read("/proc/loadavg")
	if f := strings.Fields(load); len(f) >= 3 {
		load = strings.Join(f[:3], " ")
	}
	return []string{
		fmt.Sprintf("Machine: %d CPUs (nproc), %s", runtime.NumCPU(), cpu),
		"Kernel: Linux " + read("/proc/sys/kernel/osrelease"),
		"Go: " + goVersion,
		"Load average when the report was written: " + load + " (the machine is shared; timings include that noise)",
	}
}
