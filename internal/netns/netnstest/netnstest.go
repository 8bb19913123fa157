// Package netnstest gives privileged tests throwaway network namespaces.
//
// Privileged tests are named TestPrivileged*; they need root. Without root
// they are skipped, unless GINGHAM_TEST_REQUIRE=1 (set by `make test`), where
// they fail. Every namespace a test creates is removed by t.Cleanup; tests
// never touch the real host's interfaces or routes.
package netnstest

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/gingham-net/gingham/internal/netns"
)

// Privileged skips (or, when required, fails) a test that is not run as root.
func Privileged(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("GINGHAM_TEST_REQUIRE") == "1" {
		tb.Fatal("privileged test needs root (GINGHAM_TEST_REQUIRE=1)")
	}
	tb.Skip("privileged test needs root")
}

var seq atomic.Uint32

// New creates a named namespace "g<pid%10000>-<tag><n>" (short enough for
// interface-name style limits) and removes it when the test ends.
func New(tb testing.TB, tag string) *netns.NS {
	tb.Helper()
	name := fmt.Sprintf("g%d-%s%d", os.Getpid()%100000, tag, seq.Add(1))
	ns, err := netns.NewNamed(name)
	if err != nil {
		tb.Fatalf("create netns %s: %v", name, err)
	}
	tb.Cleanup(func() {
		ns.Close()
		if err := netns.DeleteNamed(name); err != nil {
			tb.Errorf("delete netns %s: %v", name, err)
		}
	})
	return ns
}

// Name is the name under netns.RunDir of a namespace made by New.
func Name(ns *netns.NS) string {
	p := ns.Path()
	return p[len(netns.RunDir)+1:]
}
