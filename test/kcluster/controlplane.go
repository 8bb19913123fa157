package kcluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gingham-net/gingham/test/labnet"
)

// etcd listens on loopback ports of its own, away from envtest's.
const (
	etcdClientURL = "http://127.0.0.1:23790"
	etcdPeerURL   = "http://127.0.0.1:23800"
)

// controlPlane lists the control-plane daemons in start order.
func (c *Cluster) controlPlane() []daemonSpec {
	p, bin := c.PKI, c.O.Bin
	api := HostCPAddr.Addr().String()
	return []daemonSpec{
		{name: "etcd", argv: []string{filepath.Join(bin, "etcd"), "--name", "gingham-cluster",
			"--data-dir", filepath.Join(c.O.RunDir, "etcd"),
			"--listen-client-urls", etcdClientURL, "--advertise-client-urls", etcdClientURL,
			"--listen-peer-urls", etcdPeerURL, "--initial-advertise-peer-urls", etcdPeerURL,
			"--initial-cluster", "gingham-cluster=" + etcdPeerURL, "--listen-metrics-urls", "http://127.0.0.1:23810"}},
		{name: "kube-apiserver", argv: []string{filepath.Join(bin, "kube-apiserver"),
			"--etcd-servers=" + etcdClientURL,
			"--bind-address=" + api, "--advertise-address=" + api, fmt.Sprintf("--secure-port=%d", APIPort),
			"--tls-cert-file=" + p.path("apiserver.crt"), "--tls-private-key-file=" + p.path("apiserver.key"),
			"--client-ca-file=" + p.path("ca.crt"), "--token-auth-file=" + p.path("tokens.csv"),
			"--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
			"--allow-privileged=true",
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=" + p.path("sa.pub"), "--service-account-signing-key-file=" + p.path("sa.key"),
			"--service-cluster-ip-range=" + ServiceCIDR.String(), "--endpoint-reconciler-type=lease",
			// The API server dials kubelets (exec, logs) by address: nodes
			// have no DNS names here.
			"--kubelet-preferred-address-types=InternalIP"}},
		{name: "kube-controller-manager", argv: append([]string{filepath.Join(bin, "kube-controller-manager"),
			"--kubeconfig=" + p.Kubeconfig("kube-controller-manager"),
			"--authentication-kubeconfig=" + p.Kubeconfig("kube-controller-manager"),
			"--authorization-kubeconfig=" + p.Kubeconfig("kube-controller-manager"),
			"--bind-address=127.0.0.1", "--secure-port=10257", "--leader-elect=false", "--controllers=*",
			"--service-account-private-key-file=" + p.path("sa.key"), "--root-ca-file=" + p.path("ca.crt"),
			"--use-service-account-credentials=true", "--service-cluster-ip-range=" + ServiceCIDR.String()},
			c.allocateNodeCIDRs()...)},
		{name: "kube-scheduler", argv: []string{filepath.Join(bin, "kube-scheduler"),
			"--kubeconfig=" + p.Kubeconfig("kube-scheduler"),
			"--authentication-kubeconfig=" + p.Kubeconfig("kube-scheduler"),
			"--authorization-kubeconfig=" + p.Kubeconfig("kube-scheduler"),
			"--bind-address=127.0.0.1", "--secure-port=10259", "--leader-elect=false"}},
	}
}

// daemonSpec is a process the cluster runs in the host namespace.
type daemonSpec struct {
	name string
	argv []string
}

// startDaemon starts d in the host namespace (its own session, so it
// outlives `cluster up`) and records its PID first.
func (c *Cluster) startDaemon(d daemonSpec) error {
	dm, err := labnet.StartDaemon(d.name, "", c.logPath(d.name), nil, d.argv...)
	if err != nil {
		return err
	}
	c.st.PIDs[d.name] = dm.PID
	return c.st.Save(c.O.RunDir)
}

func (c *Cluster) logPath(name string) string { return filepath.Join(c.O.RunDir, "logs", name+".log") }

// startControlPlane starts etcd and kube-apiserver, waits for /readyz, then
// the controller-manager and the scheduler.
func (c *Cluster) startControlPlane(ctx context.Context) error {
	cp := c.controlPlane()
	for _, d := range cp[:2] {
		if err := c.startDaemon(d); err != nil {
			return err
		}
	}
	if err := c.waitReadyz(ctx, 2*time.Minute); err != nil {
		return err
	}
	for _, d := range cp[2:] {
		if err := c.startDaemon(d); err != nil {
			return err
		}
	}
	return nil
}

// waitReadyz polls the API server's /readyz with the admin token.
func (c *Cluster) waitReadyz(ctx context.Context, timeout time.Duration) error {
	caPEM, err := os.ReadFile(c.PKI.path("ca.crt"))
	if err != nil {
		return fmt.Errorf("readyz: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	token, err := c.adminToken()
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, APIServerURL()+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver not ready after %s (last: %s; log %s)", timeout, last, c.logPath("kube-apiserver"))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// adminToken reads the administrator's token from tokens.csv.
func (c *Cluster) adminToken() (string, error) {
	b, err := os.ReadFile(c.PKI.path("tokens.csv"))
	if err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ",")
		if len(f) >= 2 && f[1] == "admin" {
			return f[0], nil
		}
	}
	return "", fmt.Errorf("admin token: not in %s", c.PKI.path("tokens.csv"))
}

// allocateNodeCIDRs is the controller-manager's podCIDR flag: gingham does
// its own IPAM from IPPools; the bridge baseline's host-local needs a
// podCIDR per node.
func (c *Cluster) allocateNodeCIDRs() []string {
	if c.O.Network == NetworkBridge {
		return []string{"--allocate-node-cidrs=true", "--cluster-cidr=" + c.Spec.PoolCIDR.String(), "--node-cidr-mask-size=24"}
	}
	return []string{"--allocate-node-cidrs=false"}
}
