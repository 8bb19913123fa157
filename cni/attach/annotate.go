package attach

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// annotatePod records the pod's address and container on the Pod, so IPAM's
// checker and GC can match allocations to pods.
func annotatePod(ctx context.Context, kubeconfig, namespace, pod string, ip netip.Addr, containerID string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{
		AnnotationPodIP: ip.String() + "/32", AnnotationContainerID: containerID,
	}}})
	if err != nil {
		return fmt.Errorf("annotate pod %s/%s: %w", namespace, pod, err)
	}
	if _, err := kc.CoreV1().Pods(namespace).Patch(ctx, pod, k8stypes.MergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		return fmt.Errorf("annotate pod %s/%s: %w", namespace, pod, err)
	}
	return nil
}
