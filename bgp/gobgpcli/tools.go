//go:build tools

// Package gobgpcli pins GoBGP v4's own `gobgp` command line, which `make
// build` installs as bin/gobgp so an operator can inspect the agent's
// speaker through its unix socket (`gobgp --target unix:///var/run/gingham/bgp.sock neighbor`).
// Debian's gobgp is v3 and speaks another gRPC service. This file keeps the
// CLI's dependencies in go.mod; it is never compiled into gingham.
package gobgpcli

import _ "github.com/osrg/gobgp/v4/cmd/gobgp"
