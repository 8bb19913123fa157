package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gingham-net/gingham/test/bench/result"
	"github.com/gingham-net/gingham/test/benchsuite/report"
)

// cmdReport renders every result file of the results directory into the
// Markdown report and its charts. The charts directory belongs to the
// report: SVGs of charts that are no longer drawn are removed.
func cmdReport(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	dir := fs.String("results", DefaultResults, "results directory")
	out := fs.String("out", "docs/benchmarks.md", "the report")
	charts := fs.String("charts", "docs/bench", "directory of the charts")
	notes := fs.String("notes", "docs/benchmarks-notes.md", "hand-written notes to link (\"\" for none)")
	_ = fs.Parse(args)
	for _, p := range []*string{out, charts, notes} {
		if *p != "" {
			abs, err := filepath.Abs(*p)
			if err != nil {
				return err
			}
			*p = abs
		}
	}
	files, err := result.ReadDir(*dir)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no result files in %s", *dir)
	}
	run, err := report.ReadRun(*dir)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		run = nil
	}
	chartLink, err := filepath.Rel(filepath.Dir(*out), *charts)
	if err != nil {
		return err
	}
	o := report.Options{ChartDir: filepath.ToSlash(chartLink)}
	if *notes != "" {
		text, err := os.ReadFile(*notes)
		if err != nil {
			return fmt.Errorf("notes: %w", err)
		}
		link, err := filepath.Rel(filepath.Dir(*out), *notes)
		if err != nil {
			return err
		}
		o.NotesLink, o.Notes = filepath.ToSlash(link), text
	}
	cs, err := report.Charts(files)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*charts, 0o755); err != nil {
		return err
	}
	old, _ := filepath.Glob(filepath.Join(*charts, "*.svg"))
	for _, p := range old {
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	for _, c := range cs {
		if err := os.WriteFile(filepath.Join(*charts, c.Stem+".svg"), c.SVG, 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(*out, report.Markdown(run, files, o), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "benchsuite report: %s and %d charts in %s from %d result files\n", *out, len(cs), *charts, len(files))
	return nil
}
