package report

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/gingham-net/gingham/test/bench/result"
)

// Chart is one rendered chart.
type Chart struct {
	Stem string // file name without .svg
	SVG  []byte
}

// Charts draws one SVG per distinct Curve.Chart of files, its series
// together (in the order they appear), each point at the median with an
// error bar from min to max. An axis is logarithmic when its values are
// positive and span at least 20×.
func Charts(files []result.File) ([]Chart, error) {
	var order []string
	byChart := map[string][]result.Curve{}
	for _, f := range files {
		for _, c := range f.Curves {
			if _, ok := byChart[c.Chart]; !ok {
				order = append(order, c.Chart)
			}
			byChart[c.Chart] = append(byChart[c.Chart], c)
		}
	}
	var out []Chart
	for _, stem := range order {
		svg, err := draw(byChart[stem])
		if err != nil {
			return nil, fmt.Errorf("chart %s: %w", stem, err)
		}
		out = append(out, Chart{Stem: stem, SVG: svg})
	}
	return out, nil
}

// errPoints are medians with min–max error bars.
type errPoints struct {
	plotter.XYs
	plotter.YErrors
}

func draw(curves []result.Curve) ([]byte, error) {
	p := plot.New()
	first := curves[0]
	p.Title.Text = orDefault(first.Title, first.Chart)
	p.X.Label.Text, p.Y.Label.Text = first.XLabel, first.YLabel
	var xs, ys []float64
	for _, c := range curves {
		for _, pt := range c.Points {
			xs = append(xs, pt.X)
			ys = append(ys, pt.Y.Min, pt.Y.Max, pt.Y.Median)
		}
	}
	logX, logY := logWorthy(xs), logWorthy(ys)
	if logX {
		p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, logTicks{}
	}
	if logY {
		p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, logTicks{}
	}
	// Scaling curves rise to the right: the top left is free for the legend.
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs, p.Legend.YOffs = 6*vg.Millimeter, -2*vg.Millimeter
	p.Add(plotter.NewGrid())
	for i, c := range curves {
		pts := slices.Clone(c.Points)
		slices.SortFunc(pts, func(a, b result.Point) int { return compare(a.X, b.X) })
		e := errPoints{XYs: make(plotter.XYs, len(pts)), YErrors: make(plotter.YErrors, len(pts))}
		for j, pt := range pts {
			e.XYs[j] = plotter.XY{X: pt.X, Y: pt.Y.Median}
			e.YErrors[j] = struct{ Low, High float64 }{pt.Y.Median - pt.Y.Min, pt.Y.Max - pt.Y.Median}
		}
		line, points, err := plotter.NewLinePoints(e.XYs)
		if err != nil {
			return nil, err
		}
		line.Color, points.Color, points.Shape = plotutil.Color(i), plotutil.Color(i), plotutil.Shape(i)
		line.Dashes = plotutil.Dashes(i)
		bars, err := plotter.NewYErrorBars(e)
		if err != nil {
			return nil, err
		}
		bars.Color = plotutil.Color(i)
		p.Add(line, points, bars)
		p.Legend.Add(c.Series, line, points)
	}
	pad(&p.X, logX)
	pad(&p.Y, logY)
	if !logY && p.Y.Min > 0 {
		p.Y.Min = 0
	}
	w, err := p.WriterTo(16*vg.Centimeter, 10*vg.Centimeter, "svg")
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if _, err := w.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// pad widens an axis so that points and tick labels at its ends are not
// cut off.
func pad(a *plot.Axis, log bool) {
	if log {
		a.Min, a.Max = a.Min/1.3, a.Max*1.3
		return
	}
	d := (a.Max - a.Min) * 0.05
	if d == 0 {
		d = math.Abs(a.Max)*0.05 + 1
	}
	a.Min, a.Max = a.Min-d, a.Max+d
}

// logTicks mark every 1…9 × 10^k; they label the powers of ten, and also
// 2 and 5 × 10^k when the axis spans less than two decades (a power of ten
// alone may leave a single label). Labels read 1k, 10k rather than 10000.
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	label := map[int]bool{1: true}
	if math.Log10(hi/lo) < 2 {
		label[2], label[5] = true, true
	}
	var ts []plot.Tick
	for e := int(math.Floor(math.Log10(lo))); e <= int(math.Ceil(math.Log10(hi))); e++ {
		for m := 1; m <= 9; m++ {
			v, _ := strconv.ParseFloat(fmt.Sprintf("%de%d", m, e), 64) // exact decimal, no 0.30000000000000004
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if label[m] {
				t.Label = tickLabel(v)
			}
			ts = append(ts, t)
		}
	}
	return ts
}

func tickLabel(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'g', -1, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'g', -1, 64) + "k"
	default:
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
}

func compare(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// logWorthy: all positive and spanning at least 20×.
func logWorthy(vs []float64) bool {
	if len(vs) == 0 {
		return false
	}
	lo, hi := math.Inf(1), 0.0
	for _, v := range vs {
		if v <= 0 {
			return false
		}
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	return hi/lo >= 20
}
