package kcluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/yaml"

	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/internal/kube"
	"github.com/gingham-net/gingham/internal/testenv"
)

// ImageRepo is the gingham image's repository in deploy/.
const ImageRepo = "ghcr.io/gingham-net/gingham"

// Overlay is the kustomize overlay the cluster installs gingham with, as a
// user with their own image tag and a kernel without ipip would write it:
// deploy/ as the base (a path relative to the overlay), the image tag set, and the default pool's IPIP mode
// set to Never; env sets more of the agent's variables.
func Overlay(deployDir, imageTag string, env map[string]string) string {
	var extra strings.Builder
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&extra, "            - name: %s\n              value: %q\n", k, env[k])
	}
	return fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- %s
images:
- name: %s
  newTag: %q
patches:
- patch: |-
    apiVersion: apps/v1
    kind: DaemonSet
    metadata:
      name: gingham-node
      namespace: gingham-system
    spec:
      template:
        spec:
          containers:
          - name: gingham-node
            env:
            - name: GINGHAM_IPV4POOL_IPIP
              value: Never
%s`, deployDir, ImageRepo, imageTag, extra.String())
}

// InstallGingham installs gingham as a user does on this cluster: the
// per-node AS numbers of the racks' design as Node annotations, the CRDs,
// the BGP configuration and peers of the topology, then `kubectl apply -k`
// of an overlay of deploy/. It waits for the DaemonSet's pods to be Ready
// on every node and every node Ready.
func (c *Cluster) InstallGingham(ctx context.Context, imageTag string, env map[string]string) error {
	for _, n := range c.Spec.Nodes {
		if n.AS == 0 {
			continue
		}
		if _, err := c.Kubectl(ctx, "annotate", "node", n.Name, "--overwrite",
			v1.AnnotationASNumber+"="+strconv.FormatUint(uint64(n.AS), 10)); err != nil {
			return err
		}
	}
	deployDir := filepath.Join(testenv.Root(), "deploy")
	if _, err := c.Kubectl(ctx, "apply", "-f", filepath.Join(deployDir, "crds")); err != nil {
		return err
	}
	if _, err := c.Kubectl(ctx, "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"); err != nil {
		return err
	}
	objs, err := c.topologyObjects()
	if err != nil {
		return err
	}
	if _, err := c.KubectlStdin(ctx, objs, "apply", "-f", "-"); err != nil {
		return err
	}
	dir := filepath.Join(c.O.RunDir, "install")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	// Kustomize refuses absolute paths: the base is named relative to the overlay.
	base, err := filepath.Rel(dir, deployDir)
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(Overlay(base, imageTag, env)), 0o644); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	if _, err := c.Kubectl(ctx, "apply", "-k", dir); err != nil {
		return err
	}
	if err := c.WaitFor(ctx, 5*time.Minute, "gingham-node Ready on every node", func(ctx context.Context) (bool, error) {
		out, err := c.Kubectl(ctx, "-n", "gingham-system", "get", "daemonset", "gingham-node",
			"-o", "jsonpath={.status.numberReady}/{.status.desiredNumberScheduled}")
		return err == nil && out == fmt.Sprintf("%d/%d", len(c.Spec.Nodes), len(c.Spec.Nodes)), nil
	}); err != nil {
		return err
	}
	return c.WaitFor(ctx, 2*time.Minute, "every node Ready", c.nodesReady)
}

// nodesReady reports whether every node is Ready.
func (c *Cluster) nodesReady(ctx context.Context) (bool, error) {
	out, err := c.Kubectl(ctx, "get", "nodes", "-o", `jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
	return err == nil && strings.Count(out, "True") == len(c.Spec.Nodes), nil
}

// topologyObjects renders the topology's gingham objects (BGP
// configuration, one BGPPeer per rack's ToR) as a YAML stream.
func (c *Cluster) topologyObjects() (string, error) {
	scheme := kube.Scheme()
	var b strings.Builder
	for _, o := range c.Spec.Objects {
		gvk, err := apiutil.GVKForObject(o, scheme)
		if err != nil {
			return "", fmt.Errorf("topology objects: %w", err)
		}
		o.GetObjectKind().SetGroupVersionKind(gvk)
		y, err := yaml.Marshal(o)
		if err != nil {
			return "", fmt.Errorf("topology objects: %w", err)
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	return b.String(), nil
}
