// Package bgp is gingham's BGP intent: our own types for peers, originated
// paths, learned routes and session status (netip, never GoBGP types), the
// Router interface the agent drives, and the pure functions that compute
// desired state from the validated model:
//
//   - DesiredPeers: node-to-node mesh, global and per-node BGPPeers
//     (nodeSelector/peerSelector expansion, automatic reverse peering),
//     route-reflector roles, per-node AS (eBGP).
//   - DesiredPaths: what this node originates.
//   - Importable: whether a learned route may be programmed in the kernel.
//
// Invariants:
//   - Between two gingham nodes exactly one side initiates: the one with the
//     lower address is active, the higher is passive. Connection collisions
//     during a restart would otherwise abort graceful restart.
//   - At most one PeerConfig per remote address (GoBGP keys neighbors by
//     address); explicit peerIP peerings win over selector peerings, which
//     win over the mesh; among BGPPeers the first by name wins.
//   - Route reflectors are never in the mesh; a reflector treats every iBGP
//     peer whose cluster ID differs from its own as a client.
//   - A block is exported only when its affinity is confirmed and its pool
//     exports; pod /32s inside our own exported blocks are never exported.
//   - Routes inside the service CIDRs are never programmed; routes inside a
//     pool are programmed from external peers only when they allow it.
//
// Only bgp/gobgp imports GoBGP.
package bgp
