package kcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// AgnhostImage is the e2e suite's test image (make image builds it).
const AgnhostImage = "registry.k8s.io/e2e-test-images/agnhost:2.66.1"

// MatrixDeployment is a Deployment of agnhost netexec pods (HTTP on 8080),
// spread evenly over the nodes.
func MatrixDeployment(namespace string, replicas int) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %[1]s
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: netexec
  namespace: %[1]s
spec:
  replicas: %[2]d
  selector:
    matchLabels: {app: netexec}
  template:
    metadata:
      labels: {app: netexec}
    spec:
      terminationGracePeriodSeconds: 1
      topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: kubernetes.io/hostname
        whenUnsatisfiable: DoNotSchedule
        labelSelector:
          matchLabels: {app: netexec}
      containers:
      - name: netexec
        image: %[3]s
        imagePullPolicy: IfNotPresent
        args: ["netexec", "--http-port=8080"]
        readinessProbe:
          httpGet: {path: /healthz, port: 8080}
          periodSeconds: 1
`, namespace, replicas, AgnhostImage)
}

// Pod is a running pod of the matrix.
type Pod struct{ Name, Node, IP string }

// Probe is one pod-to-pod check: ICMP echo and a TCP connection to 8080.
type Probe struct {
	From, To Pod
	Ping     error
	TCP      error
}

// Matrix is every pod's checks to every other pod.
type Matrix struct{ Probes []Probe }

// Passed counts probes whose ping and TCP both worked.
func (m Matrix) Passed() int {
	n := 0
	for _, p := range m.Probes {
		if p.Ping == nil && p.TCP == nil {
			n++
		}
	}
	return n
}

// String is a table: one row per source pod, one column per destination.
func (m Matrix) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d/%d pairs OK (ping and TCP), %d%%\n", m.Passed(), len(m.Probes), 100*m.Passed()/max(1, len(m.Probes)))
	for _, p := range m.Probes {
		res := "ok"
		if p.Ping != nil || p.TCP != nil {
			res = fmt.Sprintf("FAIL ping=%v tcp=%v", p.Ping, p.TCP)
		}
		fmt.Fprintf(&b, "  %-28s %-12s -> %-28s %-12s %s\n", p.From.Name, p.From.Node, p.To.Name, p.To.Node, res)
	}
	return b.String()
}

// DeployMatrix creates the matrix Deployment with perNode pods per node
// and waits for them to be Ready.
func (c *Cluster) DeployMatrix(ctx context.Context, namespace string, perNode int) ([]Pod, error) {
	n := perNode * len(c.Spec.Nodes)
	if _, err := c.KubectlStdin(ctx, MatrixDeployment(namespace, n), "apply", "-f", "-"); err != nil {
		return nil, err
	}
	if _, err := c.Kubectl(ctx, "-n", namespace, "rollout", "status", "deployment/netexec", "--timeout=3m"); err != nil {
		return nil, err
	}
	return c.Pods(ctx, namespace, "app=netexec")
}

// Pods lists the running pods of a label selector with their node and IP.
func (c *Cluster) Pods(ctx context.Context, namespace, selector string) ([]Pod, error) {
	out, err := c.Kubectl(ctx, "-n", namespace, "get", "pods", "-l", selector, "-o", "json")
	if err != nil {
		return nil, err
	}
	var list struct {
		Items []struct {
			Metadata struct{ Name string }
			Spec     struct{ NodeName string }
			Status   struct {
				Phase string
				PodIP string
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, fmt.Errorf("pods: %w", err)
	}
	var pods []Pod
	for _, it := range list.Items {
		if it.Status.Phase == "Running" && it.Status.PodIP != "" {
			pods = append(pods, Pod{Name: it.Metadata.Name, Node: it.Spec.NodeName, IP: it.Status.PodIP})
		}
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].Node+pods[i].Name < pods[j].Node+pods[j].Name })
	return pods, nil
}

// CheckMatrix runs, from every pod with kubectl exec, a ping and a TCP
// connection (agnhost connect) to every other pod, four at a time.
func (c *Cluster) CheckMatrix(ctx context.Context, namespace string, pods []Pod) Matrix {
	var m Matrix
	for _, a := range pods {
		for _, b := range pods {
			if a.Name != b.Name {
				m.Probes = append(m.Probes, Probe{From: a, To: b})
			}
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := range m.Probes {
		wg.Add(1)
		sem <- struct{}{}
		go func(p *Probe) {
			defer wg.Done()
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			_, p.Ping = c.Kubectl(cctx, "-n", namespace, "exec", p.From.Name, "--", "ping", "-c", "1", "-W", "3", p.To.IP)
			_, p.TCP = c.Kubectl(cctx, "-n", namespace, "exec", p.From.Name, "--", "/agnhost", "connect", p.To.IP+":8080", "--timeout=3s")
		}(&m.Probes[i])
	}
	wg.Wait()
	return m
}

// BurstDeployment is a Deployment "burst" of n pause pods spread evenly
// over the nodes, for bursts of pod creation.
func BurstDeployment(namespace string, n int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: burst, namespace: %s}
spec:
  replicas: %d
  selector:
    matchLabels: {app: burst}
  template:
    metadata:
      labels: {app: burst}
    spec:
      terminationGracePeriodSeconds: 0
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: burst}}}
      containers:
      - name: pause
        image: registry.k8s.io/pause:3.10.2
        imagePullPolicy: IfNotPresent
`, namespace, n)
}
