// Package gobench parses the output of `go test -bench`: one result line
// per benchmark run, with ns/op, -benchmem's B/op and allocs/op, and every
// custom metric reported with b.ReportMetric.
package gobench

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Result is one benchmark line.
type Result struct {
	Name    string             // without the "Benchmark" prefix and the -GOMAXPROCS suffix: "B1/gingham/n=1000"
	N       int                // iterations
	Metrics map[string]float64 // by unit: "ns/op", "B/op", "add-s", …
}

// Parse reads every result line of r and ignores all other output. A line
// that starts like a result but does not parse is an error.
func Parse(r io.Reader) ([]Result, error) {
	var out []Result
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		res, ok, err := parseLine(sc.Text())
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, res)
		}
	}
	return out, sc.Err()
}

func parseLine(line string) (Result, bool, error) {
	f := strings.Fields(line)
	// Name, iterations, then value/unit pairs; anything else (a benchmark
	// name printed alone before its log output, "PASS", "ok …") is not a
	// result.
	if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
		return Result{}, false, nil
	}
	n, err := strconv.Atoi(f[1])
	if err != nil {
		return Result{}, false, nil
	}
	res := Result{Name: trimProcs(strings.TrimPrefix(f[0], "Benchmark")), N: n, Metrics: map[string]float64{}}
	for i := 2; i < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return Result{}, false, fmt.Errorf("parse benchmark line %q: value %q: %w", line, f[i], err)
		}
		res.Metrics[f[i+1]] = v
	}
	return res, true, nil
}

// trimProcs removes the -GOMAXPROCS suffix that go test appends to names.
func trimProcs(name string) string {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return name
	}
	if _, err := strconv.Atoi(name[i+1:]); err != nil {
		return name
	}
	return name[:i]
}
