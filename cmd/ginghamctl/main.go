// Command ginghamctl is gingham's calicoctl-like command line.
package main

import (
	"fmt"
	"os"

	"github.com/gingham-net/gingham/internal/version"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "version" {
		fmt.Printf("Client Version: %s\n", version.Version)
		return
	}
	fmt.Fprintln(os.Stderr, "usage: ginghamctl version")
	os.Exit(1)
}
