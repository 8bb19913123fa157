package ipam

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers decide with errors.Is; messages carry the context.
var (
	// ErrNotFound: the object does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: a create found the object already there.
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict: a compare-and-swap write lost to another writer (or the
	// retries for one ran out).
	ErrConflict = errors.New("conflict")
	// ErrUnavailable: the datastore (API server) could not be reached.
	ErrUnavailable = errors.New("datastore unavailable")
	// ErrPoolExhausted: no free address in any usable pool.
	ErrPoolExhausted = errors.New("no free address in the usable pools")
	// ErrNoPools: no pool may serve the request (none selects the node,
	// allows the use, or is enabled).
	ErrNoPools = errors.New("no usable IP pool")
	// ErrStaleRelease: the address was re-allocated since the caller saw it
	// (sequence number or handle changed); nothing was released.
	ErrStaleRelease = errors.New("allocation changed since it was read")
	// ErrInvalid: the request itself is malformed.
	ErrInvalid = errors.New("invalid request")
)

// errClaimConflict means another node created the block first; the caller
// moves on to the next block. Never returned from the package.
var errClaimConflict = errors.New("block claimed by another node")

// PoolError names the pool a request asked for and why it cannot be used.
type PoolError struct {
	Pool   string
	Reason string
}

func (e *PoolError) Error() string { return fmt.Sprintf("pool %s: %s", e.Pool, e.Reason) }

// Is makes a PoolError match ErrNoPools.
func (e *PoolError) Is(target error) bool { return target == ErrNoPools }
