package node

import (
	"context"
	"fmt"

	"go.uber.org/zap"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/gingham-net/gingham/internal/logging"
	"github.com/gingham-net/gingham/internal/version"
)

// RESTConfig returns the API server connection for a kubeconfig path, or
// the in-cluster configuration when path is empty.
func RESTConfig(path string) (*rest.Config, error) {
	if path == "" {
		c, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster API config (set GINGHAM_KUBECONFIG outside a pod): %w", err)
		}
		return c, nil
	}
	c, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", path, err)
	}
	return c, nil
}

// Run runs the agent until ctx ends.
func Run(ctx context.Context, cfg Config, log *zap.Logger) error {
	log = log.With(zap.String(logging.KeyNode, cfg.NodeName))
	log.Info("gingham-node starting", zap.String("version", version.Version))
	if _, err := RESTConfig(cfg.Kubeconfig); err != nil {
		return err
	}
	<-ctx.Done()
	log.Info("gingham-node stopping")
	return nil
}
