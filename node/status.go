package node

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/bgp"
	"github.com/gingham-net/gingham/internal/version"
)

// writeStatus stores this node's GinghamNodeStatus (creating it first when
// missing). Only this node's agent writes the object named after the node.
func writeStatus(ctx context.Context, c client.Client, nodeName string, st v1.GinghamNodeStatusStatus) error {
	obj := &v1.GinghamNodeStatus{}
	err := c.Get(ctx, client.ObjectKey{Name: nodeName}, obj)
	if apierrors.IsNotFound(err) {
		obj = &v1.GinghamNodeStatus{ObjectMeta: metav1.ObjectMeta{Name: nodeName}}
		if err = c.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create GinghamNodeStatus %s: %w", nodeName, err)
		}
		if err = c.Get(ctx, client.ObjectKey{Name: nodeName}, obj); err != nil {
			return fmt.Errorf("read GinghamNodeStatus %s: %w", nodeName, err)
		}
	} else if err != nil {
		return fmt.Errorf("read GinghamNodeStatus %s: %w", nodeName, err)
	}
	obj.Status = st
	if err := c.Status().Update(ctx, obj); err != nil {
		return fmt.Errorf("update GinghamNodeStatus %s: %w", nodeName, err)
	}
	return nil
}

// statusInterval is how often the node status is rewritten when nothing
// changes.
const statusInterval = 10 * time.Second

// statusFor is this node's status after a plan was applied: the agent's
// state, the sessions and counters of in, the pools not served.
func statusFor(in Inputs, state string, unavailable []v1.PoolCondition) v1.GinghamNodeStatusStatus {
	now := metav1.NewTime(in.Now)
	st := v1.GinghamNodeStatusStatus{AgentVersion: version.Version, AgentState: state, LastUpdated: &now,
		RoutesLearned: int64(len(in.Learned.Routes)), UnavailablePools: unavailable}
	sessions := slices.Clone(in.Sessions)
	slices.SortFunc(sessions, func(a, b bgp.SessionStatus) int { return a.Peer.Compare(b.Peer) })
	st.Sessions, st.RoutesAdvertised = sessionStatus(sessions)
	return st
}

// sessionStatus renders sessions for the status, with the most routes
// advertised to one peer.
func sessionStatus(sessions []bgp.SessionStatus) ([]v1.BGPSessionStatus, int64) {
	var out []v1.BGPSessionStatus
	var advertised int64
	for _, s := range sessions {
		since := metav1.NewTime(s.Since)
		out = append(out, v1.BGPSessionStatus{PeerAddress: s.Peer.String(), PeerType: string(s.Type),
			State: string(s.State), Since: &since, Info: s.Info, PrefixesReceived: int64(s.Received), PrefixesAdvertised: int64(s.Advertised)})
		advertised = max(advertised, int64(s.Advertised))
	}
	return out, advertised
}

// agentState names readiness in the status.
func agentState(ready bool) string {
	if ready {
		return "Ready"
	}
	return "Degraded"
}

// statusPublisher serves the status on the local socket at once and hands
// it to statusWriter (the newest replaces one not yet written).
type statusPublisher struct {
	node    string
	local   *localStatus
	mailbox chan v1.GinghamNodeStatusStatus // capacity 1
}

var _ StatusPublisher = (*statusPublisher)(nil)

func newStatusPublisher(node string, local *localStatus) *statusPublisher {
	return &statusPublisher{node: node, local: local, mailbox: make(chan v1.GinghamNodeStatusStatus, 1)}
}

// Publish never blocks: only the loop's goroutine calls it.
func (p *statusPublisher) Publish(st v1.GinghamNodeStatusStatus) {
	p.local.set(statusObject(p.node, st))
	select { // keep only the newest status
	case <-p.mailbox:
	default:
	}
	p.mailbox <- st
}

// statusRetry is how soon a failed status write is tried again.
const statusRetry = time.Second

// statusWriter writes the newest status from mailbox to the API until ctx
// ends, retrying a failed write every statusRetry until it succeeds or a
// newer status replaces it. It is the only goroutine writing the status
// object while the loop runs: an API outage (every write then takes
// client-go's retries, ~10s) delays the status, never the routes.
func statusWriter(ctx context.Context, c client.Client, node string, mailbox <-chan v1.GinghamNodeStatusStatus, log *zap.Logger) {
	var pending *v1.GinghamNodeStatusStatus
	for {
		var retry <-chan time.Time
		if pending != nil {
			retry = time.After(statusRetry)
		}
		select {
		case <-ctx.Done():
			return
		case st := <-mailbox:
			pending = &st
		case <-retry:
		}
		now := metav1.Now()
		pending.LastUpdated = &now // when it reached the API
		if err := writeStatus(ctx, c, node, *pending); err != nil {
			if ctx.Err() == nil {
				log.Warn("write node status", zap.Error(err))
			}
			continue
		}
		pending = nil
	}
}
