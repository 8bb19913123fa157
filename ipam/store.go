package ipam

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Object is an API object the Store keeps: *v1.IPAMBlock, *v1.BlockAffinity,
// *v1.IPAMHandle, *v1.IPAMConfiguration or *v1.IPPool (all cluster-scoped).
type Object interface {
	metav1.Object
	runtime.Object
}

// ObjectList is a list of Objects, e.g. *v1.IPAMBlockList.
type ObjectList interface {
	metav1.ListInterface
	runtime.Object
}

// Store is what the allocator needs from its datastore. Errors wrap
// ErrNotFound, ErrAlreadyExists, ErrConflict or ErrUnavailable when those
// are the cause.
type Store interface {
	// Get reads the object called name into into.
	Get(ctx context.Context, name string, into Object) error
	// List reads every object whose labels include labels (nil: all).
	List(ctx context.Context, into ObjectList, labels map[string]string) error
	// Create writes a new object and sets its resourceVersion.
	Create(ctx context.Context, obj Object) error
	// Update is a compare-and-swap on obj's resourceVersion (which must be
	// set): ErrConflict when the stored object changed since it was read.
	Update(ctx context.Context, obj Object) error
	// Delete removes obj only if it is unchanged since it was read
	// (resourceVersion precondition): ErrConflict otherwise.
	Delete(ctx context.Context, obj Object) error
}

// LabelNodeHash is set on BlockAffinities so one node's affinities can be
// listed without reading all of them: a hash, because node names may exceed
// a label value's 63 characters.
const LabelNodeHash = "gingham.dev/node-hash"

// NodeHash is the LabelNodeHash value of a node.
func NodeHash(node string) string {
	sum := sha256.Sum256([]byte(node))
	return hex.EncodeToString(sum[:16])
}

// AffinityName is the BlockAffinity object name of a node's block:
// <node>-<block name>, or a hash when that is not a valid object name.
func AffinityName(node string, block netip.Prefix) string {
	return objectName(node + "-" + BlockName(block))
}

// HandleName is the IPAMHandle object name of a handle ID: the ID itself
// when it is a valid object name, else a hash of it (the ID is kept in the
// spec).
func HandleName(handleID string) string { return objectName(handleID) }

func objectName(s string) string {
	if len(validation.IsDNS1123Subdomain(s)) == 0 {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return "h-" + hex.EncodeToString(sum[:20])
}

// retryConflict is the one place a read-modify-write is retried: fn must
// re-read what it writes. Conflicts retry (with jittered backoff) up to
// attempts times; any other error, or context end, returns at once.
func retryConflict(ctx context.Context, attempts int, what string, fn func() error) error {
	for i := 1; ; i++ {
		err := fn()
		if err == nil || !errors.Is(err, ErrConflict) {
			return err
		}
		if i >= attempts {
			return fmt.Errorf("%s: still conflicting after %d attempts: %w", what, attempts, err)
		}
		d := time.Duration(rand.Int64N(int64(min(time.Millisecond<<min(i, 6), 50*time.Millisecond)) + 1))
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, context.Cause(ctx))
		case <-time.After(d):
		}
	}
}
