package report

import (
	"bytes"
	"encoding/xml"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gingham-net/gingham/test/bench/result"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// fixture reads the fixed result files of testdata/results (a trimmed
// real run: micro B1, B9, and a BGP B5 with two charts).
func fixture(t *testing.T) (*Run, []result.File, Options) {
	t.Helper()
	files, err := result.ReadDir("testdata/results")
	if err != nil {
		t.Fatal(err)
	}
	run, err := ReadRun("testdata/results")
	if err != nil {
		t.Fatal(err)
	}
	notes, err := os.ReadFile("testdata/notes.md")
	if err != nil {
		t.Fatal(err)
	}
	return run, files, Options{ChartDir: "bench", NotesLink: "benchmarks-notes.md", Notes: notes}
}

func golden(t *testing.T, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", t.Name()+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if d := cmp.Diff(string(want), string(got)); d != "" {
		t.Errorf("%s differs (-want +got); rerun with -update if the change is intended:\n%s", path, d)
	}
}

func TestMarkdown(t *testing.T) {
	run, files, o := fixture(t)
	golden(t, Markdown(run, files, o))
}

func TestMarkdownWithoutRunRecord(t *testing.T) {
	_, files, _ := fixture(t)
	md := string(Markdown(nil, files[:1], Options{}))
	for _, want := range []string{"No run record", "## B1:", "](./b1-routes-to-kernel.svg)"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "Notes: [") {
		t.Error("a notes link without a notes file")
	}
}

func TestCharts(t *testing.T) {
	_, files, _ := fixture(t)
	charts, err := Charts(files)
	if err != nil {
		t.Fatal(err)
	}
	var stems []string
	for _, c := range charts {
		stems = append(stems, c.Stem)
	}
	want := []string{"b1-routes-to-kernel", "b5-mesh-convergence", "b5-mesh-memory"}
	if d := cmp.Diff(want, stems); d != "" {
		t.Fatalf("charts (-want +got):\n%s", d)
	}
	series := map[string][]string{
		"b1-routes-to-kernel": {"gingham", "netlink.Handle", "ip -batch"},
		"b5-mesh-convergence": {"gingham", "BIRD"},
		"b5-mesh-memory":      {"gingham", "BIRD"},
	}
	for _, c := range charts {
		text := svgText(t, c)
		for _, s := range series[c.Stem] {
			if !strings.Contains(text, s) {
				t.Errorf("%s: no legend entry %q in %q", c.Stem, s, text)
			}
		}
	}
	again, err := Charts(files)
	if err != nil {
		t.Fatal(err)
	}
	for i := range charts {
		if !bytes.Equal(charts[i].SVG, again[i].SVG) {
			t.Errorf("%s: two renderings differ", charts[i].Stem)
		}
	}
}

// svgText checks that the chart is well-formed XML with an <svg> root and
// returns the text of its <text> elements.
func svgText(t *testing.T, c Chart) string {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(c.SVG))
	var text strings.Builder
	root, inText := "", false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: not well-formed: %v", c.Stem, err)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = e.Name.Local
			}
			inText = e.Name.Local == "text"
		case xml.CharData:
			if inText {
				text.Write(e)
				text.WriteByte('|')
			}
		case xml.EndElement:
			inText = false
		}
	}
	if root != "svg" {
		t.Fatalf("%s: root element %q, want svg", c.Stem, root)
	}
	return text.String()
}

func TestNum(t *testing.T) {
	for _, c := range []struct {
		in   float64
		want string
	}{
		{0, "0"}, {0.02015, "0.0202"}, {1.06, "1.06"}, {12.34, "12.3"}, {999.4, "999"},
		{1472, "1472"}, {49633, "49.6k"}, {122000, "122k"}, {1.5e6, "1.50M"},
	} {
		if got := num(c.in); got != c.want {
			t.Errorf("num(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestAnchor(t *testing.T) {
	for in, want := range map[string]string{
		"B1: route programming":     "b1-route-programming",
		"B4: BGP → kernel FIB":      "b4-bgp--kernel-fib",
		"B2: no-op and drift (10%)": "b2-no-op-and-drift-10",
	} {
		if got := anchor(in); got != want {
			t.Errorf("anchor(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReadWriteRun(t *testing.T) {
	dir := t.TempDir()
	r := &Run{Command: "make bench", Machine: Machine{NProc: 2}, Steps: []Step{{Name: "micro", CPUSeconds: 3}}}
	if err := WriteRun(dir, r); err != nil {
		t.Fatal(err)
	}
	got, err := ReadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(r, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	// The run record must not be taken for a result file.
	files, err := result.ReadDir(dir)
	if err != nil || len(files) != 0 {
		t.Fatalf("ReadDir = %v, %v; want no files", files, err)
	}
}

func TestLogTicks(t *testing.T) {
	labels := func(lo, hi float64) []string {
		var out []string
		for _, tk := range (logTicks{}).Ticks(lo, hi) {
			if tk.Label != "" {
				out = append(out, tk.Label)
			}
		}
		return out
	}
	// Less than two decades: 1, 2 and 5 × 10^k, so there is more than one label.
	if d := cmp.Diff([]string{"2", "5", "10", "20"}, labels(1.6, 46)); d != "" {
		t.Errorf("1.6–46 (-want +got):\n%s", d)
	}
	// Wider: powers of ten only, in k.
	if d := cmp.Diff([]string{"1k", "10k", "100k"}, labels(770, 130000)); d != "" {
		t.Errorf("770–130000 (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"0.01", "0.1", "1"}, labels(0.0095, 3.2)); d != "" {
		t.Errorf("0.0095–3.2 (-want +got):\n%s", d)
	}
}
