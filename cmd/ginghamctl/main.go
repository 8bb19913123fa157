// Command ginghamctl is gingham's calicoctl-like command line; see
// docs/ginghamctl.md and `ginghamctl --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"time"

	"github.com/gingham-net/gingham/ctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := ctl.Run(ctx, os.Args[1:], ctl.Deps{
		Streams:  ctl.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr},
		Clients:  ctl.KubeClients{},
		Hostname: os.Hostname,
		LocalStatus: func(string) ctl.NodeStatusSource {
			path := os.Getenv("GINGHAM_STATUS_SOCKET")
			if path == "" {
				path = ctl.DefaultStatusSocket
			}
			return ctl.SocketStatus{Path: path}
		},
		IPAM:           ctl.AllocatorIPAM,
		PoolDrainDelay: 500 * time.Millisecond,
	})
	stop()
	os.Exit(code)
}
