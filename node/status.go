package node

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/gingham-net/gingham/api/v1"
)

// writeStatus stores this node's GinghamNodeStatus (creating it first when
// missing). Only this node's agent writes the object named after the node.
func writeStatus(ctx context.Context, c client.Client, nodeName string, st v1.GinghamNodeStatusStatus) error {
	obj := &v1.GinghamNodeStatus{}
	err := c.Get(ctx, client.ObjectKey{Name: nodeName}, obj)
	if apierrors.IsNotFound(err) {
		obj = &v1.GinghamNodeStatus{ObjectMeta: metav1.ObjectMeta{Name: nodeName}}
		if err = c.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create GinghamNodeStatus %s: %w", nodeName, err)
		}
		if err = c.Get(ctx, client.ObjectKey{Name: nodeName}, obj); err != nil {
			return fmt.Errorf("read GinghamNodeStatus %s: %w", nodeName, err)
		}
	} else if err != nil {
		return fmt.Errorf("read GinghamNodeStatus %s: %w", nodeName, err)
	}
	obj.Status = st
	if err := c.Status().Update(ctx, obj); err != nil {
		return fmt.Errorf("update GinghamNodeStatus %s: %w", nodeName, err)
	}
	return nil
}
