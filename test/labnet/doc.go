// Package labnet builds gingham test labs in Linux network namespaces: L2
// segments (a bridge in one namespace, a veth from every attached
// namespace), FRR and BIRD routers, nodes that run gingham-node against a
// real API server, and pods attached through the CNI plugin exactly as a
// container runtime does it. It is shared by `go run ./test/lab` (make lab)
// and the end-to-end tests in test/e2e.
//
// A lab is described by a Spec (ToRSpec, MeshSpec and RRSpec give the
// topologies the tests use), built by Build and torn down by Lab.Close.
//
// Invariants:
//   - Every namespace a lab creates is named Spec.Prefix + name, and every
//     process it starts runs inside one of them. Teardown therefore finds
//     everything by prefix: it kills the processes `ip netns pids` reports
//     for each namespace (never processes found by name), then deletes the
//     namespace, which removes its links, routes and nftables tables.
//   - Test prefixes embed the PID of the creating process (TestPrefix), so
//     CleanupStale can remove the leftovers of crashed runs without touching
//     a concurrent run.
//   - The API server listens on host loopback, which namespaces cannot reach:
//     an APIProxy listens on 127.0.0.1:6443 inside each node namespace (the
//     socket is created there, on a locked thread) and forwards to it.
//   - Per-node files (BGP socket, state dir, logs, CNI data) live under the
//     lab's run directory, because namespaces share one filesystem.
//   - Namespace switches happen only inside InNetNS, on a locked OS thread
//     that is discarded if it cannot be switched back.
package labnet
