package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// event is one line of go test -json (cmd/test2json).
type event struct {
	Action     string
	Package    string
	ImportPath string // build-output and build-fail events (Go 1.24+)
	Test       string
	Elapsed    float64
	Output     string
}

// Figure is one "reliability: figure: <name>: <value>" line, kept whole in
// Name, or a figure the report derives itself (fuzzing) as Name and Value.
type Figure struct{ Name, Value string }

// Test is one test or subtest as the report shows it.
type Test struct {
	Package, Name string
	// Result is pass, fail or skip; empty when the test never finished
	// (its package timed out or crashed).
	Result  string
	Elapsed time.Duration
	Does    []string // "reliability: does:" lines; one expected
	Figures []Figure
	Note    string // skip reason, fuzz failure, ...

	partial string // output not yet ended by a newline
	lastLog string // the last log line that is not a reliability line
}

// Depth is 0 for a top-level test, 1 for its subtests, ...
func (t *Test) Depth() int { return strings.Count(t.Name, "/") }

// Package is one package's outcome.
type Package struct {
	Name    string
	Result  string // pass, fail, skip; empty: no result seen
	Elapsed time.Duration
	Output  []string // package-level output of a failed package (build errors, panics), last lines
}

// Report is everything parsed from one go test -json stream (several
// go test runs may be concatenated).
type Report struct {
	Tests    []*Test    // packages sorted, tests in the order they started
	Packages []*Package // sorted by name
	Ignored  int        // input lines that were not test2json events
}

// Counts returns how many tests and subtests passed, failed (or never
// finished) and were skipped.
func (r *Report) Counts() (pass, fail, skip int) {
	for _, t := range r.Tests {
		switch t.Result {
		case "pass":
			pass++
		case "skip":
			skip++
		default:
			fail++
		}
	}
	return pass, fail, skip
}

// Failed reports whether any test or package failed or did not finish.
func (r *Report) Failed() bool {
	if _, fail, _ := r.Counts(); fail > 0 {
		return true
	}
	for _, p := range r.Packages {
		if p.Result != "pass" && p.Result != "skip" {
			return true
		}
	}
	return false
}

var (
	// t.Log output: indentation, file:line, the message.
	logLine    = regexp.MustCompile(`^\s+[\w.-]+\.go:\d+: (.*)$`)
	fuzzStatus = regexp.MustCompile(`^fuzz: elapsed: (\S+), execs: (\d+) \((\d+)/sec\), new interesting: (\d+) \(total: (\d+)\)`)
)

const (
	doesPrefix   = "reliability: does: "
	figurePrefix = "reliability: figure: "
	maxPkgOutput = 30
)

// Parse reads a go test -json stream.
func Parse(in io.Reader) (*Report, error) {
	tests := map[string]*Test{}
	var order []*Test
	pkgs := map[string]*Package{}
	rep := &Report{}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1024*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil || ev.Action == "" {
			rep.Ignored++
			continue
		}
		if ev.Package == "" { // build output carries the import path: "pkg [pkg.test]"
			if f := strings.Fields(ev.ImportPath); len(f) > 0 && ev.Action == "build-output" {
				ev.Package, ev.Action = f[0], "output"
			} else {
				continue
			}
		}
		p := pkgs[ev.Package]
		if p == nil {
			p = &Package{Name: ev.Package}
			pkgs[ev.Package] = p
		}
		if ev.Test == "" {
			switch ev.Action {
			case "pass", "fail", "skip":
				p.Result, p.Elapsed = ev.Action, seconds(ev.Elapsed)
			case "output":
				p.Output = append(p.Output, strings.TrimRight(ev.Output, "\n"))
				if len(p.Output) > maxPkgOutput {
					p.Output = p.Output[1:]
				}
			}
			continue
		}
		key := ev.Package + "\x00" + ev.Test
		t := tests[key]
		if t == nil {
			t = &Test{Package: ev.Package, Name: ev.Test}
			tests[key] = t
			order = append(order, t)
		}
		switch ev.Action {
		case "output":
			t.partial += ev.Output
			for {
				i := strings.IndexByte(t.partial, '\n')
				if i < 0 {
					break
				}
				t.line(t.partial[:i])
				t.partial = t.partial[i+1:]
			}
		case "pass", "fail", "skip":
			if t.partial != "" {
				t.line(t.partial)
				t.partial = ""
			}
			t.Result, t.Elapsed = ev.Action, seconds(ev.Elapsed)
			if ev.Action == "skip" && t.Note == "" {
				t.Note = "skipped: " + t.lastLog
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read go test -json: %w", err)
	}
	for _, p := range pkgs {
		if p.Result == "pass" || p.Result == "skip" {
			p.Output = nil
		}
		rep.Packages = append(rep.Packages, p)
	}
	sort.Slice(rep.Packages, func(i, j int) bool { return rep.Packages[i].Name < rep.Packages[j].Name })
	sort.SliceStable(order, func(i, j int) bool { return order[i].Package < order[j].Package })
	for _, t := range order {
		if t.Result == "" && t.Note == "" {
			t.Note = "did not finish (package timed out or crashed)"
		}
		if len(t.Does) == 0 && strings.HasPrefix(t.Name, "Fuzz") && !strings.Contains(t.Name, "/") {
			t.Does = []string{"fuzzes " + t.Name + ": its seed corpus, then generated inputs for the fuzz time"}
		}
	}
	rep.Tests = order
	return rep, nil
}

// line handles one complete output line of a test.
func (t *Test) line(s string) {
	if m := fuzzStatus.FindStringSubmatch(strings.TrimSpace(s)); m != nil {
		t.setFigure("fuzzing time", m[1])
		execs := m[2]
		if el, err := time.ParseDuration(m[1]); err == nil && el > 0 { // the last line's own rate is often 0
			n, _ := strconv.ParseFloat(m[2], 64)
			execs += fmt.Sprintf(" (%.0f/s)", n/el.Seconds())
		}
		t.setFigure("executions", execs)
		t.setFigure("new interesting inputs", fmt.Sprintf("%s (corpus %s)", m[4], m[5]))
		return
	}
	if i := strings.Index(s, "Failing input written to "); i >= 0 {
		t.Note = strings.TrimSpace(s[i:])
		return
	}
	m := logLine.FindStringSubmatch(s)
	if m == nil {
		return
	}
	msg := m[1]
	switch {
	case strings.HasPrefix(msg, doesPrefix):
		t.Does = append(t.Does, strings.TrimSpace(strings.TrimPrefix(msg, doesPrefix)))
	case strings.HasPrefix(msg, figurePrefix):
		// Kept whole: names and values may both hold ": ", so no split
		// of "<name>: <value>" is right for every test.
		t.Figures = append(t.Figures, Figure{Name: strings.TrimSpace(strings.TrimPrefix(msg, figurePrefix))})
	default:
		t.lastLog = msg
	}
}

// setFigure replaces the figure name (fuzz progress lines repeat).
func (t *Test) setFigure(name, value string) {
	for i := range t.Figures {
		if t.Figures[i].Name == name {
			t.Figures[i].Value = value
			return
		}
	}
	t.Figures = append(t.Figures, Figure{Name: name, Value: value})
}

func seconds(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
