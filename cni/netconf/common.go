package netconf

import (
	"fmt"
	"os"
	"path/filepath"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/gingham-net/gingham/internal/logging"
)

// Common are the top-level settings both plugins read, in Calico's
// spellings. gingham receives them in its own configuration and hands the
// whole document to gingham-ipam, which reads them from there too.
type Common struct {
	// Nodename is this node's Kubernetes Node name: the owner of IPAM
	// allocations (empty: $GINGHAM_NODENAME, then the hostname).
	Nodename string `json:"nodename,omitempty"`
	// LogLevel filters the plugins' logs: debug, info, warning or error
	// (empty: warning).
	LogLevel string `json:"log_level,omitempty"`
	// LogFilePath is the file the plugins append their logs to, created
	// with its directory (empty: stderr, which the runtime collects).
	LogFilePath string `json:"log_file_path,omitempty"`
	// Kubernetes holds the API server connection.
	Kubernetes Kubernetes `json:"kubernetes"`
	// LegacyKubeconfig is gingham's earlier spelling of
	// kubernetes.kubeconfig, still accepted.
	LegacyKubeconfig string `json:"kubeconfig,omitempty"`
	// LockFile serialises gingham-ipam's writing commands on the host
	// (read by gingham-ipam; empty: its default).
	LockFile string `json:"lock_file,omitempty"`
}

// Kubernetes is the "kubernetes" section (Calico's name and key).
type Kubernetes struct {
	// Kubeconfig is the path of the kubeconfig the plugins use
	// (install-cni writes /etc/cni/net.d/gingham-kubeconfig).
	Kubeconfig string `json:"kubeconfig,omitempty"`
}

// Check refuses unknown keys in the kubernetes section and validates the
// settings (doc is the plugin configuration c was decoded from).
func (c *Common) Check(doc []byte) error {
	if err := CheckSection(doc, "kubernetes", Kubernetes{}); err != nil {
		return err
	}
	if _, err := c.KubeconfigPath(); err != nil {
		return err
	}
	if _, err := logging.ParseLevel(c.LogLevel); err != nil {
		return fmt.Errorf("network configuration: log_level: %w", err)
	}
	return nil
}

// KubeconfigPath is the kubeconfig path: kubernetes.kubeconfig, or the legacy
// top-level kubeconfig; an error when both are set and differ.
func (c *Common) KubeconfigPath() (string, error) {
	k, legacy := c.Kubernetes.Kubeconfig, c.LegacyKubeconfig
	if k != "" && legacy != "" && k != legacy {
		return "", fmt.Errorf("network configuration: kubernetes.kubeconfig %q and kubeconfig %q disagree (set only kubernetes.kubeconfig)", k, legacy)
	}
	if k != "" {
		return k, nil
	}
	return legacy, nil
}

// DefaultLogLevel applies when log_level is empty.
const DefaultLogLevel = zapcore.WarnLevel

// NewLogger returns the logger log_level and log_file_path describe: JSON
// lines appended to the file (its directory created) or written to stderr,
// and a function that flushes and closes it. Call it after Check.
func (c *Common) NewLogger() (*zap.Logger, func(), error) {
	level := DefaultLogLevel
	if c.LogLevel != "" {
		l, err := logging.ParseLevel(c.LogLevel)
		if err != nil {
			return nil, nil, fmt.Errorf("network configuration: log_level: %w", err)
		}
		level = l
	}
	var sink zapcore.WriteSyncer = zapcore.Lock(os.Stderr)
	closeFile := func() {}
	if c.LogFilePath != "" {
		if err := os.MkdirAll(filepath.Dir(c.LogFilePath), 0o755); err != nil {
			return nil, nil, fmt.Errorf("log_file_path %s: create directory: %w", c.LogFilePath, err)
		}
		f, err := os.OpenFile(c.LogFilePath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("log_file_path %s: %w", c.LogFilePath, err)
		}
		// Several plugin processes append at once: each entry is one
		// write(2) to an O_APPEND file, so lines do not interleave.
		sink, closeFile = f, func() { _ = f.Close() }
	}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), sink, level))
	return log, func() { _ = log.Sync(); closeFile() }, nil
}
