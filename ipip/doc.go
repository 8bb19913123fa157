// Package ipip owns IP-in-IP encapsulation on a node: the tunl0 device, the
// per-pool choice between a direct route and a route through tunl0, and the
// ingress filter that accepts IPIP only from known nodes.
//
// Three pieces, each desired state as data and one apply:
//
//   - Encapsulate / RouteNextHop (pure): whether traffic of a pool towards a
//     remote node goes through tunl0 (ipipMode Always; CrossSubnet when the
//     remote node is outside this node's subnet; never for Never).
//   - Desire (pure) → Manager.Apply: tunl0 exists, has MTU host−20, exactly
//     one address (the node's tunnel address /32) and is up; when no pool
//     uses IPIP its addresses are removed (the device itself stays, as the
//     kernel's fallback tunnel would come back anyway).
//   - PeerAddrs (pure) → Filter.Apply: an nftables table of its own
//     ("ip gingham-ipip", separate from felix/nat's "ip gingham" so the two
//     atomic replaces never fight) accepting IP protocol 4 from node
//     addresses and dropping every other IPIP packet addressed to this host.
//
// Invariants:
//   - The only link ever written is the one named tunl0, and only when it is
//     an ipip link; a tunl0 of another kind is reported (ErrConflict), never
//     changed or deleted.
//   - On a kernel without ipip, Manager.Apply fails with an error for which
//     errors.Is(err, ErrUnsupported) holds, before any write: nothing is left
//     half-created. Supported probes the same thing in a throwaway namespace.
//   - Apply reads the kernel every time and writes only the difference: a
//     second Apply with the same desired state performs no write.
//   - The filter table is replaced atomically (one netlink batch deletes and
//     recreates it), so no packet ever sees a half-written ruleset.
//   - Source address: the tunnel address is the only address on tunl0, so
//     the kernel picks it as the source of host traffic routed
//     "via <node> dev tunl0 onlink"; routes need no explicit src (proven in
//     the VM test, test/vm).
package ipip
