package node

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/gingham-net/gingham/bgp"
)

// learnedDeadline bounds how long a restarted agent holds back deleting
// learned routes: the speaker's selection deferral time (RFC 4724 4.1),
// which it is given as GlobalConfig.DeferralTime.
const learnedDeadline = 30 * time.Second

// learnedComplete reports whether the learned set can be trusted as the
// whole set, so that felix may delete learned routes missing from it: when
// every configured session has settled, or learnedDeadline after the
// speaker started. A session has settled when its End-of-RIB has been
// processed into the learned set during its current session (the peer has
// sent its whole table), or when it was Established and went down again
// (the peer failed: its routes are withdrawn, or kept as stale by the
// graceful-restart rules, by the speaker). A session that never came up is
// waited for until the deadline, as a restarting speaker waits for
// End-of-RIB from peers not yet Established.
//
// It also returns why (on the first plan that finds it complete), the
// sessions still waited for, and when the deadline comes. Once complete,
// the set stays complete (in.LearnedComplete): this gates restarts only.
func learnedComplete(in Inputs, peers []bgp.PeerConfig) (complete bool, why string, pending []netip.Addr, wake time.Time) {
	if in.LearnedComplete {
		return true, "", nil, time.Time{}
	}
	failed := map[netip.Addr]bool{}
	for _, s := range in.Sessions {
		if s.State != bgp.StateEstablished && s.Flaps > 0 {
			failed[s.Peer] = true
		}
	}
	for _, p := range peers {
		if !slices.Contains(in.Learned.EndOfRIB, p.Address) && !failed[p.Address] {
			pending = append(pending, p.Address)
		}
	}
	deadline := in.Config.Started.Add(learnedDeadline)
	switch {
	case len(peers) == 0:
		return true, "no BGP session configured", nil, time.Time{}
	case len(pending) == 0:
		return true, "End-of-RIB from every BGP session (or the session failed)", nil, time.Time{}
	case !in.Now.Before(deadline):
		return true, fmt.Sprintf("deadline: no End-of-RIB from %s within %s", joinAddrs(pending), learnedDeadline), pending, time.Time{}
	}
	return false, "", pending, deadline
}

func joinAddrs(as []netip.Addr) string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return strings.Join(out, ", ")
}
