package gobench

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	out := `goos: linux
goarch: amd64
pkg: github.com/gingham-net/gingham/felix/routetable
cpu: AMD EPYC
BenchmarkB1/gingham/n=1000-2         	       1	  58581484 ns/op	     49633 add-routes/s	         0.02015 add-s
BenchmarkB2/gingham/n=1000/drift=10%-2  	       5	   4689932 ns/op	  868128 B/op	    8584 allocs/op
BenchmarkAssignRelease
    bench_test.go:12: some log line
BenchmarkAssignRelease-2       	     100	  51190249 ns/op	        26.37 assign-p50-ms
BenchmarkNoProcs 	 3	 10 ns/op
PASS
ok  	github.com/gingham-net/gingham/felix/routetable	22.7s
`
	got, err := Parse(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	want := []Result{
		{Name: "B1/gingham/n=1000", N: 1, Metrics: map[string]float64{"ns/op": 58581484, "add-routes/s": 49633, "add-s": 0.02015}},
		{Name: "B2/gingham/n=1000/drift=10%", N: 5, Metrics: map[string]float64{"ns/op": 4689932, "B/op": 868128, "allocs/op": 8584}},
		{Name: "AssignRelease", N: 100, Metrics: map[string]float64{"ns/op": 51190249, "assign-p50-ms": 26.37}},
		{Name: "NoProcs", N: 3, Metrics: map[string]float64{"ns/op": 10}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("(-want +got)\n%s", d)
	}
}

func TestParseBadValue(t *testing.T) {
	if _, err := Parse(strings.NewReader("BenchmarkX-2 1 abc ns/op\n")); err == nil {
		t.Fatal("a malformed result line parsed")
	}
}
