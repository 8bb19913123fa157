// Package attachtest runs a CNI plugin binary exactly as a container runtime
// does (environment variables, config on stdin, result on stdout), from
// inside a chosen "host" network namespace. Test binaries can serve as the
// gingham plugin themselves: call ServeIfPlugin first in TestMain.
package attachtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/gingham-net/gingham/cni/attach"
	"github.com/gingham-net/gingham/cni/ipamplugin"
	"github.com/gingham-net/gingham/internal/netns"
)

const selfEnv = "GINGHAM_TEST_RUN_AS_CNI_PLUGIN"

// ReferencePath is where Debian's containernetworking-plugins live.
const ReferencePath = "/usr/lib/cni"

// ServeIfPlugin runs the gingham plugin and exits when this process was
// started by Self's Runner; started under a name ending in "-ipam" (see
// SelfIPAM) it runs gingham-ipam instead, as cmd/gingham-cni does.
func ServeIfPlugin() {
	if os.Getenv(selfEnv) != "1" {
		return
	}
	if strings.HasSuffix(filepath.Base(os.Args[0]), "-ipam") {
		ipamplugin.Main()
	} else {
		attach.Main()
	}
	os.Exit(0)
}

// SelfIPAM returns a CNI_PATH directory, made under dir, whose gingham-ipam
// is this test binary: gingham delegating to it from a Self Runner runs
// the real IPAM plugin (ServeIfPlugin must be called first in TestMain).
func SelfIPAM(dir string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find test binary: %w", err)
	}
	if err := os.Symlink(self, filepath.Join(dir, "gingham-ipam")); err != nil {
		return "", fmt.Errorf("install gingham-ipam: %w", err)
	}
	return dir, nil
}

// Runner executes one plugin.
type Runner struct {
	Bin  string
	Env  []string
	Host *netns.NS // namespace the plugin runs in; nil: the caller's
	Path string    // CNI_PATH, where delegated (IPAM) plugins are found; "": ReferencePath
}

// Self is a Runner for this test binary acting as the gingham plugin.
func Self(host *netns.NS) Runner {
	return Runner{Bin: os.Args[0], Env: []string{selfEnv + "=1"}, Host: host}
}

// Reference is a Runner for a plugin of containernetworking-plugins.
func Reference(host *netns.NS, name string) Runner {
	return Runner{Bin: ReferencePath + "/" + name, Host: host}
}

// Call is one invocation.
type Call struct {
	Command     string // ADD, DEL, CHECK, STATUS, GC, VERSION
	ContainerID string
	Netns       string
	IfName      string
	Args        string // CNI_ARGS
	Conf        []byte
}

// PodArgs formats the Kubernetes CNI_ARGS.
func PodArgs(namespace, pod string) string {
	return fmt.Sprintf("IgnoreUnknown=1;K8S_POD_NAMESPACE=%s;K8S_POD_NAME=%s", namespace, pod)
}

// Run executes c and returns stdout.
func (r Runner) Run(c Call) ([]byte, error) {
	cmd := exec.Command(r.Bin)
	cmd.Env = append(os.Environ(), r.Env...)
	path := r.Path
	if path == "" {
		path = ReferencePath
	}
	cmd.Env = append(cmd.Env,
		"CNI_COMMAND="+c.Command, "CNI_CONTAINERID="+c.ContainerID, "CNI_NETNS="+c.Netns,
		"CNI_IFNAME="+c.IfName, "CNI_ARGS="+c.Args, "CNI_PATH="+path)
	cmd.Stdin = bytes.NewReader(c.Conf)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	run := func() error { return cmd.Run() }
	var err error
	if r.Host != nil {
		// Forked from the locked thread inside Do: the child starts in Host.
		err = r.Host.Do(run)
	} else {
		err = run()
	}
	if err != nil {
		return out.Bytes(), fmt.Errorf("%s %s: %w: %s %s", r.Bin, c.Command, err, strings.TrimSpace(out.String()), strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}
