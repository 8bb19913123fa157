package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gingham-net/gingham/test/bench/result"
	"github.com/gingham-net/gingham/test/benchsuite/gobench"
)

// microOpts are the micro benchmarks' sizes and iteration counts, chosen
// so that three repetitions of all four take about five minutes here.
type microOpts struct {
	dir, root, logs string
	reps            int
	b1Small         string // 10 iterations each
	b1Sizes         string // 1 iteration each
	b2Sizes         string
	b2Iters         int
	b7Pods          int
	b8Iters         int
	only            map[string]bool
}

// invocation is one run of a package's test binary.
type invocation struct {
	tag     string // names its logs
	bench   string // the suite's benchmark it feeds
	pkg     string // package directory, relative to the module root
	pattern string // -test.bench
	args    []string
}

func (in invocation) binary() string { return filepath.Base(in.pkg) + ".test" }

// commandLine is how a person would run the same thing.
func (in invocation) commandLine() string {
	s := fmt.Sprintf("go test -run '^$' -bench '%s' ./%s/", in.pattern, in.pkg)
	var extra []string
	for i := 0; i+1 < len(in.args); i += 2 { // flag, value
		if name, ok := strings.CutPrefix(in.args[i], "-test."); ok {
			s += " -" + name + " " + in.args[i+1]
		} else {
			extra = append(extra, in.args[i], in.args[i+1])
		}
	}
	if len(extra) > 0 {
		s += " -args " + strings.Join(extra, " ")
	}
	return s
}

func cmdMicro(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("micro", flag.ExitOnError)
	o := microOpts{}
	fs.StringVar(&o.dir, "results", DefaultResults, "results directory")
	fs.IntVar(&o.reps, "reps", 3, "repetitions (each a fresh run of the test binaries, in turn)")
	fs.StringVar(&o.b1Small, "b1-small", "1000", "B1 route counts measured as the mean of 10 iterations")
	fs.StringVar(&o.b1Sizes, "b1-sizes", "10000,100000", "B1 route counts measured in 1 iteration")
	fs.StringVar(&o.b2Sizes, "b2-sizes", "1000,10000,65536", "B2 route counts")
	fs.IntVar(&o.b2Iters, "b2-iters", 5, "B2 resyncs per repetition (the figure is their mean)")
	fs.IntVar(&o.b7Pods, "b7-pods", 40, "B7 pods per phase")
	fs.IntVar(&o.b8Iters, "b8-iters", 100, "B8 allocations per repetition (p50/p99 over them)")
	only := fs.String("only", "B1,B2,B7,B8", "benchmarks to run")
	_ = fs.Parse(args)
	o.only = map[string]bool{}
	for _, b := range strings.Split(*only, ",") {
		o.only[strings.ToUpper(strings.TrimSpace(b))] = true
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces)")
	}
	var err error
	if o.root, err = moduleRoot(); err != nil {
		return err
	}
	o.logs = filepath.Join(o.dir, "logs")
	if err := os.MkdirAll(o.logs, 0o755); err != nil {
		return err
	}
	return runMicro(ctx, o)
}

func runMicro(ctx context.Context, o microOpts) error {
	bin := filepath.Join(o.root, "bin")
	plugin := filepath.Join(bin, "gingham")
	if _, err := os.Stat(plugin); err != nil && o.only["B7"] {
		return fmt.Errorf("B7 needs the plugin from make build: %w", err)
	}
	all := []invocation{
		{"b1-small", "B1", "felix/routetable", "^BenchmarkB1$", []string{"-test.benchtime", "10x", "-b1.sizes", o.b1Small}},
		{"b1", "B1", "felix/routetable", "^BenchmarkB1$", []string{"-test.benchtime", "1x", "-b1.sizes", o.b1Sizes}},
		{"b2", "B2", "felix/routetable", "^BenchmarkB2$", []string{"-test.benchtime", fmt.Sprintf("%dx", o.b2Iters), "-b2.sizes", o.b2Sizes}},
		{"b7", "B7", "cni/attach", "^BenchmarkB7$", []string{"-test.benchtime", "1x", "-b7.bin", plugin, "-b7.pods", fmt.Sprint(o.b7Pods)}},
		{"b8-alloc", "B8", "ipam", "^Benchmark(AssignRelease|ReferenceBlockCAS)$", []string{"-test.benchtime", fmt.Sprintf("%dx", o.b8Iters)}},
		{"b8-burst", "B8", "ipam", "^BenchmarkBurst110OneNode$", []string{"-test.benchtime", "1x"}},
	}
	if o.b1Small == "" {
		all = slices.Delete(all, 0, 1)
	}
	var runs []invocation
	pkgs := map[string]bool{}
	for _, in := range all {
		if o.only[in.bench] {
			runs = append(runs, in)
			pkgs["./"+in.pkg] = true
		}
	}
	if len(runs) == 0 {
		return errors.New("nothing to run")
	}
	testBin, err := os.MkdirTemp("/var/tmp", "gingham-benchsuite-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(testBin)
	build := []string{"test", "-c", "-o", testBin + "/"}
	for p := range pkgs {
		build = append(build, p)
	}
	t0 := time.Now()
	cmd := exec.CommandContext(ctx, "go", build...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = o.root, os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build test binaries: %w", err)
	}
	fmt.Fprintf(os.Stderr, "micro: test binaries built in %s\n", time.Since(t0).Round(time.Second))

	// Repetitions are the outer loop: each is a fresh run of every binary,
	// so load drift on the shared machine hits gingham and its references
	// alike (they run back to back inside one binary run).
	got := map[string]samples{} // bench → samples
	started := map[string]time.Time{}
	finished := map[string]time.Time{}
	failed := map[string]error{}
	spent := map[string]time.Duration{} // in the bench's own binary runs
	for rep := 1; rep <= o.reps; rep++ {
		for _, in := range runs {
			if failed[in.bench] != nil {
				continue
			}
			if _, ok := started[in.bench]; !ok {
				started[in.bench] = time.Now()
			}
			t0 := time.Now()
			res, err := o.runOnce(ctx, testBin, in, rep)
			finished[in.bench] = time.Now()
			spent[in.bench] += time.Since(t0)
			if err != nil {
				failed[in.bench] = err
				fmt.Fprintf(os.Stderr, "micro: %s rep %d: %v\n", in.bench, rep, err)
				continue
			}
			if got[in.bench] == nil {
				got[in.bench] = samples{}
			}
			got[in.bench].add(res)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	var errs []error
	for _, b := range []string{"B1", "B2", "B7", "B8"} {
		if !o.only[b] {
			continue
		}
		if failed[b] != nil {
			errs = append(errs, fmt.Errorf("%s: %w", b, failed[b]))
			continue
		}
		f := microFile(b, got[b], o)
		var cmds []string
		for _, in := range runs {
			if in.bench == b {
				cmds = append(cmds, in.commandLine())
			}
		}
		f.Command = strings.Join(cmds, "; ") + fmt.Sprintf(" (as root; %d repetitions)", o.reps)
		f.Notes = append(f.Notes, fmt.Sprintf("Its test binary runs took %s in all, interleaved with the other micro benchmarks' "+
			"(logs: `%s/%s-*.log`).", spent[b].Round(time.Second), o.logs, strings.ToLower(b)))
		f.Machine = machineLine()
		f.Started, f.Finished = started[b], finished[b]
		if err := f.Write(o.dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// runOnce runs one invocation and parses its results; the output is kept
// under logs/.
func (o microOpts) runOnce(ctx context.Context, testBin string, in invocation, rep int) ([]gobench.Result, error) {
	args := append([]string{"-test.run", "^$", "-test.bench", in.pattern, "-test.count", "1", "-test.timeout", "10m"}, in.args...)
	cmd := exec.CommandContext(ctx, filepath.Join(testBin, in.binary()), args...)
	cmd.Dir = filepath.Join(o.root, in.pkg) // as go test runs it
	cmd.Env = os.Environ()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		cmd.Env = append(cmd.Env, "KUBEBUILDER_ASSETS="+filepath.Join(o.root, "bin"))
	}
	logName := fmt.Sprintf("%s-rep%d.log", in.tag, rep)
	logf, err := os.Create(filepath.Join(o.logs, logName))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(&out, logf)
	cmd.Stderr = logf
	t0 := time.Now()
	err = cmd.Run()
	fmt.Fprintf(os.Stderr, "micro: %s rep %d (%s): %s\n", in.bench, rep, in.tag, time.Since(t0).Round(100*time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("%s: %w (log: %s)", in.commandLine(), err, logf.Name())
	}
	res, err := gobench.Parse(&out)
	if err != nil {
		return nil, err
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("%s: no benchmark results (log: %s)", in.commandLine(), logf.Name())
	}
	return res, nil
}

// samples holds one value per repetition: benchmark name → unit → values.
type samples map[string]map[string][]float64

func (s samples) add(rs []gobench.Result) {
	for _, r := range rs {
		if s[r.Name] == nil {
			s[r.Name] = map[string][]float64{}
		}
		for unit, v := range r.Metrics {
			s[r.Name][unit] = append(s[r.Name][unit], v)
		}
	}
}

// stat summarises name's metric unit, each value multiplied by scale.
func (s samples) stat(name, unit string, scale float64) result.Stat {
	vs := s[name][unit]
	xs := make([]float64, len(vs))
	for i, v := range vs {
		xs[i] = v * scale
	}
	return result.StatOf(xs)
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find the module root: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("find the module root: not inside the gingham module")
	}
	return filepath.Dir(mod), nil
}

// machineLine is the short machine description stored in result files.
func machineLine() string {
	m := machine()
	return fmt.Sprintf("%d × %s, %.0f GiB, kernel %s", m.NProc, m.CPU, m.MemGiB, m.Kernel)
}
