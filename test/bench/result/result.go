// Package result is the exchange format between the benchmark programs of
// `make bench` and the report writer: each program measures one or more of
// the suite's benchmarks (B1–B11, ../shared/research/performance.md §7)
// and writes one JSON file per benchmark into a results directory; the
// report writer reads them all and renders docs/benchmarks.md and the
// charts. A figure always carries its references measured in the same
// run; ratios are computed by the reader, never stored.
package result

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// Stat summarises the repetitions of one measurement.
type Stat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"` // repetitions
}

// StatOf summarises xs (the zero Stat when xs is empty).
func StatOf(xs []float64) Stat {
	if len(xs) == 0 {
		return Stat{}
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Stat{Median: m, Min: s[0], Max: s[len(s)-1], N: len(s)}
}

// Value is one named measurement, e.g. a reference ("BIRD", "ip -batch").
type Value struct {
	Name string `json:"name"`
	Stat Stat   `json:"stat"`
}

// Figure is one row of the report: gingham's measurement beside its
// references from the same run.
type Figure struct {
	Bench   string  `json:"bench"` // "B4"
	Name    string  `json:"name"`  // "100k /32 BGP → kernel FIB, t100"
	Unit    string  `json:"unit"`  // "s", "ms", "MiB", "routes/s", "Gbit/s"
	Gingham Stat    `json:"gingham"`
	Refs    []Value `json:"refs"`
	Lower   bool    `json:"lowerIsBetter"`
	Goal    string  `json:"goal,omitempty"` // from performance.md §7, e.g. "≤ 1.5 s"
	Met     *bool   `json:"met,omitempty"`  // whether Goal was met; nil when not decidable
	Note    string  `json:"note,omitempty"`
}

// Point is one x of a scaling curve.
type Point struct {
	X float64 `json:"x"`
	Y Stat    `json:"y"`
}

// Curve is one series of a chart; curves with the same Chart are drawn
// together (gingham beside its references).
type Curve struct {
	Chart  string  `json:"chart"`  // file stem, e.g. "b4-routes-to-fib"
	Title  string  `json:"title"`  // "Routes → time into the kernel FIB"
	XLabel string  `json:"xLabel"` // "routes"
	YLabel string  `json:"yLabel"` // "seconds"
	Series string  `json:"series"` // "gingham", "BIRD", "FRR"
	Points []Point `json:"points"`
}

// File is what one benchmark program writes for one benchmark.
type File struct {
	Bench    string            `json:"bench"` // "B4"
	Title    string            `json:"title"` // "BGP → FIB end to end"
	Method   string            `json:"method"`
	Command  string            `json:"command"`
	Machine  string            `json:"machine"`
	Versions map[string]string `json:"versions,omitempty"`
	Started  time.Time         `json:"started"`
	Finished time.Time         `json:"finished"`
	Figures  []Figure          `json:"figures"`
	Curves   []Curve           `json:"curves,omitempty"`
	Notes    []string          `json:"notes,omitempty"`
}

// Write stores f as dir/<bench>.json.
func (f *File) Write(dir string) error {
	if f.Bench == "" {
		return errors.New("write result: bench is empty")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write result %s: %w", f.Bench, err)
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("write result %s: %w", f.Bench, err)
	}
	return os.WriteFile(filepath.Join(dir, strings.ToLower(f.Bench)+".json"), append(b, '\n'), 0o644)
}

// ReadDir reads every result file of dir, ordered by benchmark number.
func ReadDir(dir string) ([]File, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	var files []File
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read result %s: %w", p, err)
		}
		var f File
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("read result %s: %w", p, err)
		}
		files = append(files, f)
	}
	sort.Slice(files, func(i, j int) bool { return benchNumber(files[i].Bench) < benchNumber(files[j].Bench) })
	return files, nil
}

func benchNumber(b string) int {
	var n int
	_, _ = fmt.Sscanf(strings.TrimPrefix(strings.ToUpper(b), "B"), "%d", &n)
	return n
}

// Ratio is gingham's median over the reference's (0 when undefined).
func Ratio(g, ref Stat) float64 {
	if ref.Median == 0 {
		return 0
	}
	return g.Median / ref.Median
}
