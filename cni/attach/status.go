package attach

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// statusTimeout bounds STATUS, which runtimes call every few seconds.
const statusTimeout = 10 * time.Second

// cmdStatus reports whether the plugin can take ADDs (CNI error 50 when it
// cannot): the agent must have written the MTU file when the MTU comes
// from it, the kubeconfig (when configured) must load and its API server
// answer, and the IPAM plugin's own STATUS must pass.
func cmdStatus(r *request) error {
	conf := r.conf
	if conf.MTU == 0 {
		if _, err := os.Stat(filepath.Join(conf.StateDir, MTUFile)); err != nil {
			return notAvailable("gingham agent not ready (no pod MTU yet)", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
	defer cancel()
	if conf.Kubeconfig != "" {
		if err := apiReachable(ctx, conf.Kubeconfig); err != nil {
			return notAvailable("kubernetes API not usable", err)
		}
	}
	if err := invoke.DelegateStatus(ctx, conf.IPAM.Type, r.args.StdinData, nil); err != nil {
		return fmt.Errorf("ipam %s status: %w", conf.IPAM.Type, err)
	}
	return nil
}

func notAvailable(msg string, err error) *types.Error {
	return types.NewError(types.ErrPluginNotAvailable, msg+": "+err.Error(), "")
}

// apiReachable loads the kubeconfig and asks its API server for its
// version.
func apiReachable(ctx context.Context, path string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("kubernetes.kubeconfig: %w", err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return fmt.Errorf("kubernetes.kubeconfig %s: %w", path, err)
	}
	cfg.Timeout = statusTimeout
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kubernetes client from %s: %w", path, err)
	}
	if err := kc.Discovery().RESTClient().Get().AbsPath("/version").Do(ctx).Error(); err != nil {
		return fmt.Errorf("ask the API server of %s for its version: %w", path, err)
	}
	return nil
}
