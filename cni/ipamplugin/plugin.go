// Package ipamplugin is the gingham-ipam CNI plugin (placeholder until the
// IPAM issue lands it).
package ipamplugin

import (
	"fmt"
	"os"
)

// Main runs the plugin as a CNI binary.
func Main() {
	fmt.Fprintln(os.Stderr, "gingham-ipam: not implemented yet")
	os.Exit(1)
}
