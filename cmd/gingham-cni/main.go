// Command gingham-cni is installed twice: as "gingham" (the CNI plugin that
// attaches pods) and as "gingham-ipam" (the IPAM plugin). It dispatches on
// the name it was started under.
package main

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/gingham-net/gingham/cni/attach"
	"github.com/gingham-net/gingham/cni/ipamplugin"
)

func main() {
	if strings.HasSuffix(filepath.Base(os.Args[0]), "-ipam") {
		ipamplugin.Main()
		return
	}
	attach.Main()
}
