// Command gingham-node is gingham's node agent (run by the DaemonSet on
// every node). Flags and GINGHAM_* variables are described by --help.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/gingham-net/gingham/internal/logging"
	"github.com/gingham-net/gingham/node"
)

func main() {
	cfg, err := node.LoadConfig(os.Args[1:], os.LookupEnv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "gingham-node: %v\n", err)
		os.Exit(2)
	}
	log := logging.New(cfg.LogLevel, cfg.LogJSON)
	defer func() { _ = log.Sync() }()
	logging.RouteLibraryLogs(log.Named("k8s"))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := node.Run(ctx, cfg, log); err != nil {
		log.Error("agent stopped", logging.ErrorField(err))
		os.Exit(1)
	}
}
