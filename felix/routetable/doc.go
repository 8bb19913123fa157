// Package routetable is the one writer of the kernel routes gingham owns in
// one routing table.
//
// Callers record intent with SetRoutes (a complete desired set of Targets,
// computed elsewhere as pure data); Apply dumps the table through a reused
// netlink handle, diffs it against the desired set and programs only the
// difference with replace/delete.
//
// Invariants:
//   - Ownership is the route protocol: a kernel route is ours iff its
//     protocol is ours (default 96). Routes of any other protocol (kernel,
//     boot, static, bird, ...) are never deleted or replaced, even when they
//     hold a prefix we want; that prefix is reported as a conflict and logged
//     once until it resolves.
//   - An unchanged route is never touched: after a restart the new instance
//     adopts the routes the old one (or the CNI plugin, which tags its /32s
//     with our protocol) left in place, with no delete+add.
//   - Routes of ours on an interface matching the workload prefix (cali) are
//     not deleted during a grace period after the interface is first seen,
//     so a /32 the CNI plugin just added survives until the agent hears of
//     the pod.
//   - Routes of ours that Retain's predicate matches are never deleted,
//     only replaced by a desired route to the same prefix.
//   - A Target whose interface does not exist (or is down) is pending, not an
//     error; it is programmed by the Apply after the interface appears.
//   - Apply reports what it did (Result) and the joined errors of the
//     operations that failed; a failed dump (including ErrInconsistentDump
//     after retries) changes nothing.
package routetable
