// Package attach is the gingham CNI plugin that attaches pods (placeholder
// until the dataplane issue lands it).
package attach

import (
	"fmt"
	"os"
)

// Main runs the plugin as a CNI binary.
func Main() {
	fmt.Fprintln(os.Stderr, "gingham: not implemented yet")
	os.Exit(1)
}
