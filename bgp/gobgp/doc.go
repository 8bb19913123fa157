// Package gobgp implements bgp.Router with an embedded GoBGP v4 server. It
// is the only package of gingham that imports GoBGP.
//
// Invariants:
//   - gRPC is served only on a unix socket (Options.SocketPath), never on
//     TCP, so the stock gobgp CLI can inspect the node
//     (gobgp --target unix:///path neighbor) and nothing on the network can.
//   - The speaker's record of running peers, paths and import policy is
//     updated after each successful GoBGP call, never ahead of it, so a
//     failed Reconcile is retried exactly where it stopped; a Reconcile with
//     unchanged input makes no GoBGP call.
//   - A changed PeerConfig replaces only that session; other sessions are
//     never reset by Reconcile.
//   - Best paths are watched from before the first peer is added; multipath
//     updates are regrouped by prefix and delivered as the full learned set,
//     coalesced, from one goroutine.
//   - A peer's End-of-RIB is delivered in the learned set that holds every
//     route the peer sent before it (best paths, End-of-RIBs and session
//     changes come through one GoBGP watcher, in the order GoBGP handled
//     them), and is forgotten when the session changes state. The agent
//     takes its learned set as complete only on them.
//   - Graceful restart: every session advertises GR with a per-AFI
//     MpGracefulRestart entry (without it the capability carries no AFI and
//     peers drop our routes); the restarting flag is set only when
//     GlobalConfig.Restarting, and only for peers added within the
//     deferral time; Stop(ctx, false) sends no Cease to GR peers.
//   - TCP-MD5 passwords are never logged; a peer whose password reference is
//     unresolved is not configured (it could never establish).
//   - SessionStatus.Since of an Established session is the exact time it
//     came up (from the peer watch), never earlier: GoBGP's own uptime is
//     truncated to the second.
//   - The speaker registers no metrics itself: Collector returns GoBGP's
//     Prometheus collector for the caller's registry.
package gobgp
