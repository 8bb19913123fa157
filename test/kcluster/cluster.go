package kcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/gingham-net/gingham/test/labnet"
)

// Cluster is a cluster being built or attached to.
type Cluster struct {
	O    Options
	Spec labnet.Spec
	Lab  *labnet.Lab
	PKI  PKI
	st   *State
}

// Attach returns the cluster of o, built earlier or not yet built.
func Attach(o Options) (*Cluster, error) {
	spec, err := Spec(o)
	if err != nil {
		return nil, err
	}
	st, err := LoadState(o.RunDir)
	if err != nil {
		return nil, err
	}
	return &Cluster{O: o, Spec: spec, Lab: labnet.Attach(spec), PKI: PKI{Dir: filepath.Join(o.RunDir, "pki")}, st: st}, nil
}

// NodeNames are the Kubernetes node names, in spec order.
func (c *Cluster) NodeNames() []string {
	var out []string
	for _, n := range c.Spec.Nodes {
		out = append(out, n.Name)
	}
	return out
}

// Up builds the network (namespaces, ToRs, spine, the control plane's
// link), starts the control plane and every node (containerd, kubelet,
// kube-proxy) and waits until every node has registered. Nodes stay
// NotReady until a CNI network is installed. On error, what was started
// stays for inspection; Down removes it.
func (c *Cluster) Up(ctx context.Context) error {
	if len(c.st.PIDs) > 0 || c.st.HostLink != "" {
		return fmt.Errorf("a cluster is already recorded in %s: run down first", c.O.RunDir)
	}
	for _, d := range []string{"logs", "etcd"} {
		if err := os.MkdirAll(filepath.Join(c.O.RunDir, d), 0o755); err != nil {
			return fmt.Errorf("cluster up: %w", err)
		}
	}
	// FRR drops to user frr: the run directory must be traversable.
	if err := os.Chmod(c.O.RunDir, 0o755); err != nil {
		return fmt.Errorf("cluster up: %w", err)
	}
	c.st.Prefix, c.st.Nodes = c.O.Prefix, c.NodeNames()
	if err := c.st.Save(c.O.RunDir); err != nil {
		return err
	}
	lab, err := labnet.Build(ctx, c.Spec)
	if err != nil {
		return fmt.Errorf("cluster network: %w", err)
	}
	c.Lab = lab
	if err := c.linkHost(ctx); err != nil {
		return err
	}
	if err := c.Lab.StartRouters(ctx); err != nil {
		return fmt.Errorf("cluster routers: %w", err)
	}
	if err := os.WriteFile(filepath.Join(c.O.RunDir, "resolv.conf"), []byte("nameserver "+DNSServiceIP.String()+"\n"), 0o644); err != nil {
		return fmt.Errorf("cluster up: %w", err)
	}
	if err := c.PKI.Generate(c.NodeNames()); err != nil {
		return err
	}
	if err := c.startControlPlane(ctx); err != nil {
		return err
	}
	for _, n := range c.Spec.Nodes {
		if err := c.startNode(n); err != nil {
			return err
		}
	}
	return c.WaitFor(ctx, 3*time.Minute, "every node registered", func(ctx context.Context) (bool, error) {
		out, err := c.Kubectl(ctx, "get", "nodes", "-o", "name")
		return err == nil && strings.Count(out, "node/") == len(c.Spec.Nodes), nil
	})
}

// linkHost connects the host (the control plane) to tor1 with a veth and
// routes the underlay and the pod pool through it. The host never forwards
// (its ip_forward stays as it is): it only talks to nodes and pods.
func (c *Cluster) linkHost(ctx context.Context) error {
	link := c.O.Prefix + "cp"
	// One cluster per machine: the control plane's address is fixed.
	if out, _ := labnet.Run(ctx, "", "ip", "-o", "addr", "show", "to", HostCPAddr.Addr().String()); strings.TrimSpace(out) != "" {
		return fmt.Errorf("another cluster holds the control-plane address %s (make cluster-down, or stop the other run): %s",
			HostCPAddr.Addr(), strings.TrimSpace(out))
	}
	c.st.HostLink = link
	if err := c.st.Save(c.O.RunDir); err != nil {
		return err
	}
	tor := c.Lab.NS("tor1")
	steps := [][]string{
		{"ip", "link", "add", link, "type", "veth", "peer", "name", "cp", "netns", tor},
		{"ip", "addr", "add", HostCPAddr.String(), "dev", link},
		{"ip", "link", "set", link, "up"},
		{"ip", "-n", tor, "addr", "add", ToRCPAddr.String(), "dev", "cp"},
		{"ip", "-n", tor, "link", "set", "cp", "up"},
		{"ip", "route", "add", Underlay.String(), "via", ToRCPAddr.Addr().String(), "dev", link},
		{"ip", "route", "add", c.Spec.PoolCIDR.String(), "via", ToRCPAddr.Addr().String(), "dev", link},
	}
	for _, s := range steps {
		if _, err := labnet.Run(ctx, "", s[0], s[1:]...); err != nil {
			return fmt.Errorf("control-plane link: %w", err)
		}
	}
	return nil
}

// Kubectl runs bin/kubectl as the administrator.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) (string, error) {
	return c.KubectlStdin(ctx, "", args...)
}

// KubectlStdin runs bin/kubectl as the administrator with stdin.
func (c *Cluster) KubectlStdin(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.O.Bin, "kubectl"), append([]string{"--kubeconfig", c.AdminKubeconfig()}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// AdminKubeconfig is the administrator's kubeconfig (system:masters).
func (c *Cluster) AdminKubeconfig() string { return c.PKI.Kubeconfig("admin") }

// WaitFor polls cond every 500ms until it holds, fails, or timeout passes.
func (c *Cluster) WaitFor(ctx context.Context, timeout time.Duration, what string, cond func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		ok, err := cond(ctx)
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, errors.Join(ctx.Err(), fmt.Errorf("timeout %s", timeout)))
		case <-time.After(500 * time.Millisecond):
		}
	}
}
