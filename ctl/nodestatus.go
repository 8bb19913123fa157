package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/internal/version"
)

// ErrNoStatus is wrapped by a NodeStatusSource that has nothing for a node.
var ErrNoStatus = errors.New("no status")

// apiStatusSource reads the GinghamNodeStatus resource the agent publishes.
type apiStatusSource struct{ c client.Client }

var _ NodeStatusSource = apiStatusSource{}

func (s apiStatusSource) NodeStatus(ctx context.Context, node string) (*v1.GinghamNodeStatus, error) {
	var st v1.GinghamNodeStatus
	if err := s.c.Get(ctx, client.ObjectKey{Name: node}, &st); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%w: no GinghamNodeStatus %q (is gingham-node running on that node?)", ErrNoStatus, node)
		}
		return nil, fmt.Errorf("read GinghamNodeStatus %q: %w", node, err)
	}
	return &st, nil
}

func (a *app) newNodeCommand() *cobra.Command {
	node := &cobra.Command{
		Use:   "node",
		Short: "Inspect gingham on a node",
	}
	var name string
	status := &cobra.Command{
		Use:   "status [--node NAME]",
		Short: "Show the BGP sessions of a node",
		Long: `Show the state of gingham-node on one node and its BGP sessions, like
calicoctl node status: one table per address family with PEER ADDRESS,
PEER TYPE (node-to-node mesh, global, node specific, route reflector),
STATE, SINCE and INFO.

The status is read from the GinghamNodeStatus resource the agent publishes
(named after the node). Without --node, the node is this machine's host name.`,
		Example: `  # On a node
  ginghamctl node status

  # From anywhere with cluster access
  ginghamctl node status --node worker-1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.nodeStatus(cmd.Context(), name, cmd.Flags().Changed("node"))
		},
	}
	status.Flags().StringVar(&name, "node", "", "node name (default: this machine's host name)")
	node.AddCommand(status)
	return node
}

func (a *app) nodeStatus(ctx context.Context, node string, explicit bool) error {
	if node == "" {
		if a.deps.Hostname == nil {
			return fmt.Errorf("give --node NAME")
		}
		h, err := a.deps.Hostname()
		if err != nil {
			return fmt.Errorf("find this machine's host name (give --node NAME): %w", err)
		}
		node = h
	}
	var errs []error
	if a.deps.LocalStatus != nil { // the local agent answers without API access
		st, err := a.deps.LocalStatus(node).NodeStatus(ctx, node)
		if err == nil {
			return renderNodeStatus(a.deps.Streams.Out, st)
		}
		errs = append(errs, err)
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	sources := []NodeStatusSource{apiStatusSource{c}}
	var st *v1.GinghamNodeStatus
	for _, s := range sources {
		if st, err = s.NodeStatus(ctx, node); err == nil {
			break
		}
		errs = append(errs, err)
	}
	if st == nil {
		err := errors.Join(errs...)
		if !explicit && errors.Is(err, ErrNoStatus) {
			err = fmt.Errorf("%w; give --node NAME%s", err, a.knownNodes(ctx, c))
		}
		return err
	}
	return renderNodeStatus(a.deps.Streams.Out, st)
}

// knownNodes lists the nodes that have a status, for error messages.
func (a *app) knownNodes(ctx context.Context, c client.Client) string {
	var l v1.GinghamNodeStatusList
	if err := c.List(ctx, &l); err != nil || len(l.Items) == 0 {
		return ""
	}
	var names []string
	for _, s := range l.Items {
		names = append(names, s.Name)
	}
	sort.Strings(names)
	return " (nodes with a status: " + strings.Join(names, ", ") + ")"
}

// renderNodeStatus prints the node's state and one peer table per family.
func renderNodeStatus(w io.Writer, st *v1.GinghamNodeStatus) error {
	s := st.Status
	fmt.Fprintf(w, "gingham-node on %s: %s (version %s, status updated %s)\n",
		st.Name, selectorOr(s.AgentState, "state unknown"), selectorOr(s.AgentVersion, "unknown"), timeOr(s.LastUpdated, "never"))
	var v4, v6 [][]string
	for _, p := range s.Sessions {
		row := []string{p.PeerAddress, p.PeerType, p.State, timeOr(p.Since, "-"), p.Info}
		if isIPv6Peer(p.PeerAddress) {
			v6 = append(v6, row)
		} else {
			v4 = append(v4, row)
		}
	}
	for _, fam := range []struct {
		name string
		rows [][]string
	}{{"IPv4", v4}, {"IPv6", v6}} {
		fmt.Fprintf(w, "\n%s BGP status\n", fam.name)
		if len(fam.rows) == 0 {
			fmt.Fprintf(w, "No %s peers found.\n", fam.name)
			continue
		}
		boxTable(w, []string{"PEER ADDRESS", "PEER TYPE", "STATE", "SINCE", "INFO"}, fam.rows)
	}
	for _, pc := range s.UnavailablePools {
		fmt.Fprintf(w, "\nWARNING: pool %s is not served on this node (%s): %s\n", pc.Pool, pc.Reason, pc.Message)
	}
	return nil
}

func isIPv6Peer(addr string) bool {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap.Addr().Is6() && !ap.Addr().Is4In6()
	}
	a, err := netip.ParseAddr(addr)
	return err == nil && a.Is6() && !a.Is4In6()
}

// boxTable draws a bordered table (as calicoctl node status does).
func boxTable(w io.Writer, headers []string, rows [][]string) {
	width := make([]int, len(headers))
	for i, h := range headers {
		width[i] = len(h)
	}
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len(c))
		}
	}
	line := func() {
		for _, n := range width {
			fmt.Fprint(w, "+", strings.Repeat("-", n+2))
		}
		fmt.Fprintln(w, "+")
	}
	cells := func(r []string) {
		for i, c := range r {
			fmt.Fprintf(w, "| %-*s ", width[i], c)
		}
		fmt.Fprintln(w, "|")
	}
	line()
	cells(headers)
	line()
	for _, r := range rows {
		cells(r)
	}
	line()
}

func (a *app) newVersionCommand() *cobra.Command {
	var clientOnly bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Show the ginghamctl version and the gingham-node versions in the cluster",
		Long: `Show the version of ginghamctl and, from the GinghamNodeStatus resources,
the version each node's agent reports.`,
		Example: `  ginghamctl version
  ginghamctl version --client`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a.out("Client Version:    %s\n", version.Version)
			if clientOnly {
				return nil
			}
			c, err := a.client()
			if err != nil {
				return fmt.Errorf("unable to retrieve agent versions: %w", err)
			}
			var l v1.GinghamNodeStatusList
			if err := c.List(cmd.Context(), &l); err != nil {
				return fmt.Errorf("unable to retrieve agent versions: %w", err)
			}
			return renderAgentVersions(a.deps.Streams.Out, l.Items)
		},
	}
	cmd.Flags().BoolVar(&clientOnly, "client", false, "show only the client version (no cluster access)")
	return cmd
}

// renderAgentVersions prints the distinct agent versions and their nodes.
func renderAgentVersions(w io.Writer, items []v1.GinghamNodeStatus) error {
	if len(items) == 0 {
		fmt.Fprintln(w, "Agent Versions:    none reported (no GinghamNodeStatus; is gingham-node deployed?)")
		return nil
	}
	byVersion := map[string][]string{}
	for _, s := range items {
		v := selectorOr(s.Status.AgentVersion, "unknown")
		byVersion[v] = append(byVersion[v], s.Name)
	}
	var versions []string
	for v := range byVersion {
		versions = append(versions, v)
	}
	sort.Strings(versions)
	fmt.Fprintln(w, "Agent Versions:")
	tw := newTabWriter(w)
	fmt.Fprintln(tw, "  VERSION\tNODES\tNAMES")
	for _, v := range versions {
		n := byVersion[v]
		sort.Strings(n)
		fmt.Fprintf(tw, "  %s\t%d\t%s\n", v, len(n), strings.Join(n, ","))
	}
	return tw.Flush()
}
