package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"
	"k8s.io/client-go/tools/clientcmd"
)

// ServiceAccountTokenFile is where the kubelet mounts (and rotates) the
// pod's service account token.
const ServiceAccountTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// cniKubeconfigInterval is how often the CNI kubeconfig is compared with
// the mounted token. The kubelet replaces a projected token at 80% of its
// lifetime (an hour at least), so the old one stays valid for minutes.
const cniKubeconfigInterval = 30 * time.Second

// cniKubeconfig keeps the token in the CNI plugin's kubeconfig (written
// once by install-cni) equal to the agent's mounted service account token,
// which the kubelet rotates: without it, the plugin's token expires and
// every pod ADD fails with 401.
type cniKubeconfig struct {
	path      string // the CNI plugin's kubeconfig
	tokenFile string // the mounted service account token
	interval  time.Duration
	log       *zap.Logger
	lastErr   string // last error logged, so a lasting problem logs once
}

func newCNIKubeconfig(path string, log *zap.Logger) *cniKubeconfig {
	return &cniKubeconfig{path: path, tokenFile: ServiceAccountTokenFile, interval: cniKubeconfigInterval, log: log}
}

// run refreshes at once and then every interval until ctx ends; it is the
// only writer of the file.
func (k *cniKubeconfig) run(ctx context.Context) {
	t := time.NewTicker(k.interval)
	defer t.Stop()
	for {
		k.refreshAndLog()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (k *cniKubeconfig) refreshAndLog() {
	changed, err := k.refresh()
	switch {
	case err != nil && err.Error() != k.lastErr:
		k.lastErr = err.Error()
		k.log.Warn("cannot refresh the CNI plugin's kubeconfig; pod ADDs fail once its token expires", zap.Error(err))
	case err == nil && k.lastErr != "":
		k.lastErr = ""
		k.log.Info("CNI plugin's kubeconfig readable again", zap.String("path", k.path))
	}
	if changed {
		k.log.Info("CNI plugin's kubeconfig updated to the rotated service account token", zap.String("path", k.path))
	}
}

// refresh rewrites the kubeconfig when its token differs from the mounted
// one, and reports whether it did.
func (k *cniKubeconfig) refresh() (bool, error) {
	token, err := os.ReadFile(k.tokenFile)
	if err != nil {
		return false, fmt.Errorf("read service account token: %w", err)
	}
	old, err := os.ReadFile(k.path)
	if err != nil {
		return false, fmt.Errorf("read CNI kubeconfig: %w", err)
	}
	updated, changed, err := withToken(old, string(bytes.TrimSpace(token)))
	if err != nil {
		return false, fmt.Errorf("CNI kubeconfig %s: %w", k.path, err)
	}
	if !changed {
		return false, nil
	}
	if err := writeFileAtomic(k.path, updated, 0o600); err != nil {
		return false, fmt.Errorf("rewrite CNI kubeconfig: %w", err)
	}
	return true, nil
}

// withToken returns the kubeconfig with the current context's user
// holding token, and whether that changed anything. Clusters, CA data and
// contexts are kept.
func withToken(kubeconfig []byte, token string) ([]byte, bool, error) {
	if token == "" {
		return nil, false, errors.New("the service account token is empty")
	}
	cfg, err := clientcmd.Load(kubeconfig)
	if err != nil {
		return nil, false, fmt.Errorf("parse: %w", err)
	}
	ctx, ok := cfg.Contexts[cfg.CurrentContext]
	if !ok {
		return nil, false, fmt.Errorf("current context %q is not defined", cfg.CurrentContext)
	}
	user, ok := cfg.AuthInfos[ctx.AuthInfo]
	if !ok {
		return nil, false, fmt.Errorf("user %q of context %q is not defined", ctx.AuthInfo, cfg.CurrentContext)
	}
	if user.Token == token {
		return kubeconfig, false, nil
	}
	user.Token = token
	out, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, false, fmt.Errorf("encode: %w", err)
	}
	return out, true, nil
}

// writeFileAtomic writes data to a temporary file beside path, with mode
// perm, and renames it over path: a reader sees the old file or the new
// one, never a part.
func writeFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err = f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err = f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
