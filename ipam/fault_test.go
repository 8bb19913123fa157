package ipam_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/gingham-net/gingham/ipam"
	"github.com/gingham-net/gingham/ipam/k8sstore"
)

// faultStore wraps the real store and breaks one chosen write, once.
type faultStore struct {
	ipam.Store
	mu     sync.Mutex
	step   string // e.g. "Create *v1.IPAMBlock"
	mode   string // "error": fail before writing; "applied": write, then fail; "cancel": cancel the caller's context first
	cancel context.CancelFunc
	fired  bool
}

var _ ipam.Store = (*faultStore)(nil)

func (f *faultStore) fire(op string, obj ipam.Object) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fired || fmt.Sprintf("%s %T", op, obj) != f.step {
		return "", false
	}
	f.fired = true
	return f.mode, true
}

func (f *faultStore) write(ctx context.Context, op string, obj ipam.Object, do func(context.Context, ipam.Object) error) error {
	mode, ok := f.fire(op, obj)
	if !ok {
		return do(ctx, obj)
	}
	switch mode {
	case "error":
		return fmt.Errorf("injected before %s: %w", f.step, ipam.ErrUnavailable)
	case "applied":
		if err := do(ctx, obj); err != nil {
			return err
		}
		return fmt.Errorf("injected after %s: %w", f.step, ipam.ErrUnavailable)
	default: // cancel
		f.cancel()
		return do(ctx, obj)
	}
}

func (f *faultStore) Create(ctx context.Context, obj ipam.Object) error {
	return f.write(ctx, "Create", obj, f.Store.Create)
}

func (f *faultStore) Update(ctx context.Context, obj ipam.Object) error {
	return f.write(ctx, "Update", obj, f.Store.Update)
}

func (f *faultStore) Delete(ctx context.Context, obj ipam.Object) error {
	return f.write(ctx, "Delete", obj, f.Store.Delete)
}

// faultModes says what each faultStore mode does, for the reliability report.
var faultModes = map[string]string{
	"error":   "the write fails before it is made",
	"applied": "the write is made but reported failed",
	"cancel":  "the caller's context is cancelled as the write starts",
}

// TestClaimFaults breaks each write of a first assignment (the three
// phases of the block claim, the handle, the block's allocation) in three
// ways, then checks that the node's next assignments succeed, no address
// is handed out twice, every block ends up owned by exactly one node
// through a confirmed affinity, and the checker finds nothing left over.
func TestClaimFaults(t *testing.T) {
	steps := []string{
		"Create *v1.BlockAffinity", // claim phase 1: pending affinity
		"Create *v1.IPAMBlock",     // claim phase 2: the block
		"Update *v1.BlockAffinity", // claim phase 3: confirm
		"Create *v1.IPAMHandle",    // the handle, before the address
		"Update *v1.IPAMBlock",     // the address itself
	}
	for _, step := range steps {
		for _, mode := range []string{"error", "applied", "cancel"} {
			t.Run(step+"/"+mode, func(t *testing.T) {
				t.Logf("reliability: does: breaks the write %q of a node's first assignment (%s: %s), then checks that the next 3 assignments succeed, no address is given twice, every block is owned once through a confirmed affinity and the checker finds no leftovers", step, mode, faultModes[mode])
				ctx, store := setup(t)
				pool(t, "p", "10.2.0.0/25", 26)
				node(t, "n1", nil)
				callCtx, cancel := context.WithCancel(ctx)
				defer cancel()
				faulty := &faultStore{Store: store, step: step, mode: mode, cancel: cancel}
				a := ipam.New(faulty, ipam.Options{})

				given := map[netip.Addr]string{}
				first, err := a.Assign(callCtx, ipam.AssignRequest{Handle: "net.h1", Node: "n1"})
				if !faulty.fired {
					t.Fatalf("fault at %s never fired", step)
				}
				outcome := "failed"
				if err != nil { // the cause, without the call chain
					msg := err.Error()
					outcome += " (" + msg[strings.LastIndex(msg, ": ")+2:] + ")"
				}
				if err == nil {
					outcome = "survived: " + first.String()
					given[first] = "net.h1"
					t.Logf("assignment survived the fault: %s", first)
				} else if errors.Is(err, ipam.ErrPoolExhausted) {
					t.Fatalf("fault surfaced as pool exhausted: %v", err)
				}
				for _, h := range []string{"net.h1", "net.h2", "net.h3"} {
					addr, err := a.Assign(ctx, ipam.AssignRequest{Handle: h, Node: "n1"})
					if err != nil {
						t.Fatalf("assignment after the fault: %v", err)
					}
					if prev, dup := given[addr]; dup && prev != h {
						t.Fatalf("%s given to %s and %s", addr, prev, h)
					}
					given[addr] = h
				}
				if len(given) != 3 {
					t.Fatalf("3 handles hold %d distinct addresses: %v", len(given), given)
				}
				t.Logf("reliability: figure: faulted assignment: %s", outcome)
				t.Logf("reliability: figure: distinct addresses after the fault: %d of 3 assignments", len(given))
				st := readState(t, ctx, store)
				checkBlocksOwnedOnce(t, st)
				if len(st.allocs) != 3 {
					t.Errorf("%d allocations in the datastore, want 3: %+v", len(st.allocs), st.allocs)
				}
				rep, err := ipam.NewChecker(store, k8sstore.NewCluster(env.Client)).Check(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if rep.Problems() != 0 || len(rep.PendingAffinities) != 0 {
					t.Errorf("checker found leftovers: %+v", rep)
				}
				t.Logf("reliability: figure: checker problems left: %d", rep.Problems()+len(rep.PendingAffinities))
			})
		}
	}
}
