package kcluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Identity is a user of the API server with a static token.
type Identity struct {
	Name   string   // kubeconfig file name (without .kubeconfig)
	User   string   // Kubernetes user name
	Groups []string // Kubernetes groups
}

// identities are the control plane's and nodes' users: each component gets
// the user its default RBAC bindings (or the Node authorizer) expect, and
// only the administrator is in system:masters.
func identities(nodes []string) []Identity {
	ids := []Identity{
		{Name: "admin", User: "admin", Groups: []string{"system:masters"}},
		{Name: "kube-controller-manager", User: "system:kube-controller-manager"},
		{Name: "kube-scheduler", User: "system:kube-scheduler"},
		{Name: "kube-proxy", User: "system:kube-proxy"},
	}
	for _, n := range nodes {
		ids = append(ids, Identity{Name: "node-" + n, User: "system:node:" + n, Groups: []string{"system:nodes"}})
	}
	return ids
}

// PKI is the cluster's certificates, keys, tokens and kubeconfigs.
type PKI struct{ Dir string }

func (p PKI) path(name string) string           { return filepath.Join(p.Dir, name) }
func (p PKI) Kubeconfig(identity string) string { return p.path(identity + ".kubeconfig") }

// Generate writes a CA, the API server's serving certificate (for the
// control-plane address, the kubernetes Service address and its names),
// the service-account signing key, a static token per identity and a
// kubeconfig per identity. It overwrites a previous cluster's.
func (p PKI) Generate(nodes []string) error {
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("pki: ca key: %w", err)
	}
	now := time.Now().Add(-time.Hour)
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gingham-cluster-ca"},
		NotBefore: now, NotAfter: now.AddDate(1, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("pki: ca: %w", err)
	}
	if ca, err = x509.ParseCertificate(caDER); err != nil {
		return fmt.Errorf("pki: ca: %w", err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("pki: apiserver key: %w", err)
	}
	kubeSvc := ServiceCIDR.Addr().Next()
	srv := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: now, NotAfter: now.AddDate(1, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local", "localhost"},
		IPAddresses: []net.IP{net.IP(HostCPAddr.Addr().AsSlice()), net.IP(kubeSvc.AsSlice()), net.IPv4(127, 0, 0, 1)},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("pki: apiserver cert: %w", err)
	}
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("pki: service account key: %w", err)
	}
	saPub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return fmt.Errorf("pki: service account key: %w", err)
	}
	files := map[string][]byte{
		"ca.crt":        pemBlock("CERTIFICATE", caDER),
		"apiserver.crt": pemBlock("CERTIFICATE", srvDER),
		"sa.key":        pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(saKey)),
		"sa.pub":        pemBlock("PUBLIC KEY", saPub),
	}
	for name, key := range map[string]*ecdsa.PrivateKey{"ca.key": caKey, "apiserver.key": srvKey} {
		der, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return fmt.Errorf("pki: %s: %w", name, err)
		}
		files[name] = pemBlock("EC PRIVATE KEY", der)
	}
	var tokens strings.Builder
	for _, id := range identities(nodes) {
		tok, err := randomToken()
		if err != nil {
			return err
		}
		fmt.Fprintf(&tokens, "%s,%s,%s,%q\n", tok, id.User, id.User, strings.Join(id.Groups, ","))
		files[id.Name+".kubeconfig"] = []byte(kubeconfig(p.path("ca.crt"), tok))
	}
	files["tokens.csv"] = []byte(tokens.String())
	var errs []error
	for name, b := range files {
		errs = append(errs, os.WriteFile(p.path(name), b, 0o600))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}

func pemBlock(kind string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
}

func randomToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("pki: token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func kubeconfig(caFile, token string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: gingham-cluster
  cluster: {server: %q, certificate-authority: %q}
users:
- name: user
  user: {token: %q}
contexts:
- name: gingham-cluster
  context: {cluster: gingham-cluster, user: user}
current-context: gingham-cluster
`, APIServerURL(), caFile, token)
}
