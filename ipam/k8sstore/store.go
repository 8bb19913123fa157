// Package k8sstore keeps IPAM state on gingham's CRDs (IPAMBlock,
// BlockAffinity, IPAMHandle, with IPPool and IPAMConfiguration read) through
// a controller-runtime client, and answers the GC's questions about pods and
// nodes.
//
// Invariants:
//   - Update is always a compare-and-swap: it refuses an object without a
//     resourceVersion, and the API server rejects a stale one (ErrConflict).
//   - Delete always carries UID and resourceVersion preconditions, the
//     Kubernetes stand-in for compare-and-delete.
//   - API errors are mapped to ipam's sentinel errors (and wrapped, so the
//     API status stays visible); anything that is not an API status (refused
//     connection, timeout) is ipam.ErrUnavailable.
//   - The client must not be a cache-backed one: reads feed
//     compare-and-swap writes and the GC's last check before a release.
//
// Retrying conflicts is not done here: a retry must re-read and re-apply the
// change, so it lives in ipam's single retry helper.
package k8sstore

import (
	"context"
	"errors"
	"fmt"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/ipam"
)

// Scheme knows the types the store and Cluster read and write.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, coordinationv1.AddToScheme, v1.AddToScheme} {
		if err := add(s); err != nil {
			panic(fmt.Sprintf("build scheme: %v", err)) // static registration; cannot fail
		}
	}
	return s
}

// NewClient returns an uncached client for cfg with Scheme.
func NewClient(cfg *rest.Config) (client.Client, error) {
	c, err := client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		return nil, fmt.Errorf("create API client: %w", err)
	}
	return c, nil
}

// Store implements ipam.Store on the CRDs.
type Store struct{ c client.Client }

var _ ipam.Store = (*Store)(nil)

// New returns a Store over c, which must be uncached and know gingham's
// types (see Scheme).
func New(c client.Client) *Store { return &Store{c: c} }

// Get implements ipam.Store.
func (s *Store) Get(ctx context.Context, name string, into ipam.Object) error {
	return s.mapErr("read", into, name, s.c.Get(ctx, client.ObjectKey{Name: name}, into))
}

// List implements ipam.Store.
func (s *Store) List(ctx context.Context, into ipam.ObjectList, labels map[string]string) error {
	var opts []client.ListOption
	if len(labels) > 0 {
		opts = append(opts, client.MatchingLabels(labels))
	}
	err := s.c.List(ctx, into, opts...)
	if err != nil {
		return fmt.Errorf("list %s: %w", s.kind(into), Classify(err))
	}
	return nil
}

// Create implements ipam.Store.
func (s *Store) Create(ctx context.Context, obj ipam.Object) error {
	return s.mapErr("create", obj, obj.GetName(), s.c.Create(ctx, obj))
}

// Update implements ipam.Store: compare-and-swap on resourceVersion.
func (s *Store) Update(ctx context.Context, obj ipam.Object) error {
	if obj.GetResourceVersion() == "" {
		return fmt.Errorf("update %s %s without resourceVersion: %w", s.kind(obj), obj.GetName(), ipam.ErrInvalid)
	}
	return s.mapErr("update", obj, obj.GetName(), s.c.Update(ctx, obj))
}

// Delete implements ipam.Store: only the version that was read.
func (s *Store) Delete(ctx context.Context, obj ipam.Object) error {
	rv, uid := obj.GetResourceVersion(), obj.GetUID()
	if rv == "" || uid == "" {
		return fmt.Errorf("delete %s %s without resourceVersion and UID: %w", s.kind(obj), obj.GetName(), ipam.ErrInvalid)
	}
	pre := metav1.Preconditions{ResourceVersion: &rv, UID: &uid}
	err := s.c.Delete(ctx, obj, client.Preconditions(pre))
	return s.mapErr("delete", obj, obj.GetName(), err)
}

func (s *Store) kind(obj runtime.Object) string {
	gvk, err := apiutil.GVKForObject(obj, s.c.Scheme())
	if err != nil {
		return fmt.Sprintf("%T", obj)
	}
	return gvk.Kind
}

func (s *Store) mapErr(op string, obj runtime.Object, name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s %s %s: %w", op, s.kind(obj), name, Classify(err))
}

// Classify wraps err with the ipam sentinel that names its cause.
func Classify(err error) error {
	var sentinel error
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case apierrors.IsNotFound(err):
		sentinel = ipam.ErrNotFound
	case apierrors.IsAlreadyExists(err):
		sentinel = ipam.ErrAlreadyExists
	case apierrors.IsConflict(err):
		// Also a failed UID/resourceVersion delete precondition.
		sentinel = ipam.ErrConflict
	case apierrors.IsServerTimeout(err), apierrors.IsTimeout(err), apierrors.IsServiceUnavailable(err),
		apierrors.IsTooManyRequests(err), apierrors.IsInternalError(err):
		sentinel = ipam.ErrUnavailable
	default:
		var status apierrors.APIStatus
		if errors.As(err, &status) {
			return err
		}
		sentinel = ipam.ErrUnavailable
	}
	return fmt.Errorf("%w: %w", sentinel, err)
}

// Cluster answers the Checker's and GC's questions about pods and nodes
// through the API (never a cache).
type Cluster struct{ c client.Client }

var _ ipam.Cluster = (*Cluster)(nil)

// NewCluster returns a Cluster over c (uncached; see Scheme).
func NewCluster(c client.Client) *Cluster { return &Cluster{c: c} }

var (
	podGVK  = schema.GroupVersionKind{Version: "v1", Kind: "Pod"}
	nodeGVK = schema.GroupVersionKind{Version: "v1", Kind: "Node"}
)

// ListPods implements ipam.Cluster (metadata only).
func (c *Cluster) ListPods(ctx context.Context) ([]ipam.PodKey, error) {
	var list metav1.PartialObjectMetadataList
	list.SetGroupVersionKind(podGVK.GroupVersion().WithKind("PodList"))
	if err := c.c.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("list pods: %w", Classify(err))
	}
	out := make([]ipam.PodKey, 0, len(list.Items))
	for _, p := range list.Items {
		out = append(out, ipam.PodKey{Namespace: p.Namespace, Name: p.Name})
	}
	return out, nil
}

// ListNodes implements ipam.Cluster (metadata only).
func (c *Cluster) ListNodes(ctx context.Context) ([]string, error) {
	var list metav1.PartialObjectMetadataList
	list.SetGroupVersionKind(nodeGVK.GroupVersion().WithKind("NodeList"))
	if err := c.c.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("list nodes: %w", Classify(err))
	}
	out := make([]string, 0, len(list.Items))
	for _, n := range list.Items {
		out = append(out, n.Name)
	}
	return out, nil
}

// PodExists implements ipam.Cluster.
func (c *Cluster) PodExists(ctx context.Context, namespace, name string) (bool, error) {
	return c.exists(ctx, podGVK, client.ObjectKey{Namespace: namespace, Name: name})
}

// NodeExists implements ipam.Cluster.
func (c *Cluster) NodeExists(ctx context.Context, name string) (bool, error) {
	return c.exists(ctx, nodeGVK, client.ObjectKey{Name: name})
}

func (c *Cluster) exists(ctx context.Context, gvk schema.GroupVersionKind, key client.ObjectKey) (bool, error) {
	var m metav1.PartialObjectMetadata
	m.SetGroupVersionKind(gvk)
	err := c.c.Get(ctx, key, &m)
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsNotFound(err):
		return false, nil
	}
	return false, fmt.Errorf("read %s %s: %w", gvk.Kind, key, Classify(err))
}
