// Command benchsuite is `make bench` (issue #9) apart from the BGP
// benchmarks of ./test/bench: it runs the Go micro benchmarks B1, B2, B7
// and B8 and the dataplane benchmark B9 of the suite in
// ../shared/research/performance.md §7, each beside its reference in the
// same run, writes one test/bench/result file per benchmark into a results
// directory, and renders every result file of that directory into
// docs/benchmarks.md with SVG charts under docs/bench/.
//
// Subcommands, in the order make bench runs them:
//
//	benchsuite begin     -results DIR   empty DIR; record machine, versions, load
//	benchsuite step      -results DIR -name NAME -- CMD ARGS...
//	                                    run one part, record its wall and CPU time
//	benchsuite micro     -results DIR   B1, B2 (felix/routetable), B7 (cni/attach), B8 (ipam)
//	benchsuite dataplane -results DIR   B9: pod→pod iperf3 through the gingham CNI plugin
//	benchsuite cluster   -results DIR -image-tag TAG
//	                                    B12: pod created → Running on the real cluster, gingham vs bridge
//	benchsuite end       -results DIR   record the end time and load
//	benchsuite report    -results DIR -out docs/benchmarks.md -charts docs/bench
//
// micro and dataplane need root (network namespaces) and bin/ from make
// build; report needs neither. It is a program, not a test, so `go test
// ./...` never runs a benchmark.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// DefaultResults is where make bench keeps its result files.
const DefaultResults = "/var/tmp/gingham-bench"

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmds := map[string]func(context.Context, []string) error{
		"begin": cmdBegin, "step": cmdStep, "end": cmdEnd,
		"micro": cmdMicro, "dataplane": cmdDataplane, "cluster": cmdCluster, "report": cmdReport,
	}
	run, ok := cmds[os.Args[1]]
	if !ok {
		usage()
	}
	if err := run(ctx, os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "benchsuite %s: %v\n", os.Args[1], err)
		var code exitCode
		if errors.As(err, &code) {
			os.Exit(int(code))
		}
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: benchsuite begin|step|micro|dataplane|cluster|end|report -results DIR [flags]")
	os.Exit(2)
}

// exitCode is a step's child exit status, passed through.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
