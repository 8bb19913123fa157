package node

import (
	"context"

	"go.uber.org/zap"
)

// applier hands plans to the speaker, the tunnel, felix, the MTU file and
// the status readers. It holds nothing but those ports and what the MTU
// file says; the loop's goroutine owns it.
type applier struct {
	log     *zap.Logger
	speaker Speaker
	dp      Dataplane
	tunnel  Tunnel
	mtu     MTUFile
	status  StatusPublisher
	health  *health
	mtuIPIP bool // the MTU file was last written for IPIP
}

// syncTunnel brings the tunnel in line with p (the routes of the plan
// depend on its outcome: see loop.pass).
func (a *applier) syncTunnel(ctx context.Context, p Plan) TunnelState {
	return a.tunnel.Sync(ctx, p.Tunnel)
}

// apply makes the speaker, the MTU file and felix converge to p. It
// returns the problems that make the node unready; each is retried by the
// next apply.
func (a *applier) apply(ctx context.Context, p Plan) []string {
	var problems []string
	if err := a.speaker.Reconcile(ctx, p.BGP); err != nil {
		a.log.Warn("BGP reconcile incomplete; will retry", zap.Error(err))
		problems = append(problems, "bgp: "+err.Error())
	}
	if p.PodMTUIPIP != a.mtuIPIP {
		if err := a.mtu.Write(p.PodMTUIPIP); err != nil {
			problems = append(problems, err.Error())
		} else {
			a.mtuIPIP = p.PodMTUIPIP
		}
	}
	d := p.Dataplane
	for _, err := range []error{
		a.dp.SetLocalEndpoints(ctx, d.Endpoints),
		a.dp.SetLocalBlocks(ctx, d.Blocks),
		a.dp.SetNATPools(ctx, d.NATPools),
		a.dp.SetRemoteRoutes(ctx, d.Remote, d.RemoteComplete),
	} {
		if err != nil && ctx.Err() == nil {
			problems = append(problems, "dataplane: "+err.Error())
		}
	}
	return problems
}
