// Command gingham-cni is installed twice: as "gingham" (the CNI plugin that
// attaches pods) and as "gingham-ipam" (the IPAM plugin). It dispatches on
// the name it was started under.
package main

import (
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	name := filepath.Base(os.Args[0])
	fmt.Fprintf(os.Stderr, "%s: CNI plugin not built yet\n", name)
	os.Exit(1)
}
