// Package report renders the result files of one make bench run
// (test/bench/result) as docs/benchmarks.md and SVG charts: a header that
// says what the figures were measured on and how loaded it was, a table of
// the goals of performance.md §7, then one table per benchmark (figure,
// gingham, references, ratio, goal, met) with its method, notes and charts.
//
// Rendering is pure (no clock, no machine access): the same files give the
// same bytes, which the golden test relies on.
package report
