package ctl

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// app is the state shared by the commands of one invocation.
type app struct {
	deps  Deps
	reg   *registry
	conn  ConnFlags
	cache client.Client
}

// client connects once per invocation.
func (a *app) client() (client.Client, error) {
	if a.cache != nil {
		return a.cache, nil
	}
	c, err := a.deps.Clients.Client(a.conn)
	if err != nil {
		return nil, err
	}
	a.cache = c
	return c, nil
}

func (a *app) out(format string, args ...any) { fmt.Fprintf(a.deps.Streams.Out, format, args...) }
func (a *app) errf(format string, args ...any) {
	fmt.Fprintf(a.deps.Streams.ErrOut, format, args...)
}

// NewRootCommand builds the ginghamctl command tree.
func NewRootCommand(d Deps) *cobra.Command {
	a := &app{deps: d, reg: newRegistry()}
	root := &cobra.Command{
		Use:   "ginghamctl",
		Short: "Manage gingham: IP pools, BGP peers and configuration, IPAM, node status",
		Long: `ginghamctl manages gingham's resources (API group gingham.dev/v1) the way
calicoctl manages Calico's, and reaches the cluster the way kubectl does:
--kubeconfig, else $KUBECONFIG, else ~/.kube/config, else the in-cluster
service account.

Resource types (any of the names on the right may be typed):
` + a.reg.aliasTable(),
		Example: `  # List IP pools with every column
  ginghamctl get ippools -o wide

  # Create objects from a file, a directory or stdin (YAML or JSON)
  ginghamctl apply -f pools/
  cat pool.yaml | ginghamctl create -f -

  # Turn on IP-in-IP for a pool, then delete it safely
  ginghamctl patch ippool default-ipv4-ippool -p '{"spec":{"ipipMode":"Always"}}'
  ginghamctl delete ippool default-ipv4-ippool

  # BGP sessions of a node, and IPAM usage
  ginghamctl node status --node worker-1
  ginghamctl ipam show --show-blocks`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetIn(d.Streams.In)
	root.SetOut(d.Streams.Out)
	root.SetErr(d.Streams.ErrOut)
	root.PersistentFlags().StringVar(&a.conn.Kubeconfig, "kubeconfig", "", "path of the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster)")
	root.PersistentFlags().StringVar(&a.conn.Context, "context", "", "kubeconfig context to use (default: the current context)")
	root.AddCommand(
		a.newGetCommand(),
		a.newWriteCommand(opCreate), a.newWriteCommand(opApply), a.newWriteCommand(opReplace),
		a.newDeleteCommand(),
		a.newPatchCommand(),
		a.newLabelCommand(),
		a.newNodeCommand(),
		a.newIPAMCommand(),
		a.newVersionCommand(),
	)
	root.CompletionOptions.HiddenDefaultCmd = false
	return root
}

// ErrReported is returned when a command already printed its failure; Run
// exits 1 without printing it again.
var errReported = errors.New("failed (reported above)")

// Run runs ginghamctl with args (without the program name) and returns the
// exit code: 0 on success, 1 on any failure, with errors on stderr.
func Run(ctx context.Context, args []string, d Deps) int {
	root := NewRootCommand(d)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		if !errors.Is(err, errReported) {
			msg := err.Error()
			if !strings.HasPrefix(msg, "error") && !strings.HasPrefix(msg, "failed") && !strings.HasPrefix(msg, "Failed") {
				msg = "error: " + msg
			}
			fmt.Fprintln(d.Streams.ErrOut, msg)
		}
		return 1
	}
	return 0
}

// completeKinds offers the resource type names for shell completion.
func (a *app) completeKinds(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) == 0 {
		return a.reg.names(), cobra.ShellCompDirectiveNoFileComp
	}
	return nil, cobra.ShellCompDirectiveNoFileComp
}
