// Package node is gingham-node: the agent that turns the cluster's API
// objects and what BGP peers send into this node's routes, BGP sessions and
// status.
//
// It is split in three:
//
//   - plan (plan.go) is a pure function from Inputs (a Snapshot of model
//     types, the learned routes, the sessions, the kernel's endpoints, the
//     tunnel's state, the time) to a Plan: the speaker's peers and paths,
//     felix's desired state, the tunnel, readiness. It does no I/O and reads
//     no clock; its tests are tables.
//   - the applier (apply.go) hands a plan to small consumer-side ports
//     (ports.go: Speaker, Dataplane, Tunnel, MTUFile, StatusPublisher).
//   - the loop (loop.go) owns the agent's state: it gathers the inputs,
//     plans and applies on every change (coalesced by a timer) and when the
//     plan asks to look again. Its tests run it over fakes in a
//     testing/synctest bubble.
//
// Run (run.go) is the composition root: it builds the real ports and starts
// every long-running part in one errgroup.
//
// Invariants:
//   - One goroutine (the loop) owns the agent's state; the speaker, felix
//     and the informers only send it coalesced signals, never block on it.
//   - Only watch.go reads API objects; everything after it sees the model.
//   - Local state (pod routes, this node's blackholes, NAT, the status) is
//     programmed at once. After a restart no learned route is deleted
//     before the learned set is complete: every configured session's
//     End-of-RIB processed into it, or the session failed, or the
//     graceful-restart deferral time passed (see learnedComplete), never a
//     quiet timer. Routes learned meanwhile are programmed at once.
//   - A lasting problem is logged once, not on every pass.
//   - Every goroutine Run starts has ended when it returns (a test checks);
//     on the way out the speaker stops the graceful-restart way and every
//     route stays in the kernel for the next start.
//   - The API server is never waited for by the loop: statuses go through a
//     one-slot mailbox to statusWriter, passwords through a cache that keeps
//     the last read across an outage.
package node
