// Package felix is gingham's node dataplane: it programs the kernel so pods
// on this node are reachable (Calico's L3 model: a /32 per pod on its host
// veth, proxy ARP, 169.254.1.1 as the pods' gateway) and so learned BGP
// routes and natOutgoing take effect.
//
// Callers (node/) record intent with SetLocalEndpoints, SetLocalBlocks,
// SetRemoteRoutes and SetNATPools; Run's goroutine owns all state, computes
// the desired routes purely (DesiredRoutes) and applies them through one
// routetable.RouteTable, one netlink handle and one nat.Manager.
//
// Invariants:
//   - One goroutine (Run) owns every piece of mutable state; the Set methods
//     only send it messages and are safe from any goroutine.
//   - Nothing is written to the kernel until every input has been set at
//     least once (in sync): a restarted agent never deletes routes because it
//     has not heard of them yet. Pass an empty slice to say "none".
//   - Learned routes may be set as incomplete (after a restart, before every
//     peer's End-of-RIB): local state (pod routes, blackholes, NAT) and the
//     learned routes known so far are programmed at once, and only the
//     deletion of our learned routes is held back until a complete set.
//   - Applies are coalesced and throttled: at most one per MinApplyInterval,
//     triggered by input changes, by relevant netlink events (links coming
//     and going, our routes deleted by someone else) and by the periodic full
//     resync, which also repairs anything edited behind our back.
//   - Routes are owned by protocol number (see routetable): routes of other
//     protocols are never touched, and unchanged routes are never rewritten.
//   - A local endpoint's /32 beats a remote route or a blackhole block for
//     the same prefix; a local block's blackhole beats a remote route.
package felix
