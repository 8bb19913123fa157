package node

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/gingham-net/gingham/bgp"
	"github.com/gingham-net/gingham/internal/logging"
)

// coalesceDelay is how long the loop lets a burst of events gather before
// it plans again.
const coalesceDelay = 20 * time.Millisecond

// snapshotRetry is how soon a failed read of the API caches is retried.
const snapshotRetry = time.Second

// events are the loop's inputs from other goroutines. Each channel holds
// at most one pending value: senders replace or drop (see poke).
type events struct {
	changed  <-chan struct{}    // the API caches changed
	learned  <-chan bgp.Learned // the speaker's newest learned set
	sessions <-chan struct{}    // a BGP session changed state
	applied  <-chan struct{}    // felix applied successfully for the first time
}

// loop is the agent's one owner of its state: it gathers the inputs, plans
// (plan, pure) and applies (applier) on every change, coalesced, and when
// the plan asks to look again.
type loop struct {
	log       *zap.Logger
	clock     Clock
	cfg       PlanConfig
	source    SnapshotSource
	secrets   SecretSource
	endpoints EndpointSource
	app       *applier
	ev        events

	// State below is owned by run's goroutine.
	learned          bgp.Learned
	dataplaneApplied bool
	sessionsChanged  bool // since the status was last published
	complete         bool
	tunnel           TunnelState
	lastFull         time.Time
	ready            bool
	statusAt         time.Time // last published; zero: never
	logged, logging  map[string]bool
}

// run plans and applies until ctx ends.
func (l *loop) run(ctx context.Context) error {
	timer := time.NewTimer(0) // the first pass at once
	defer timer.Stop()
	due := l.clock.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
			due = l.pass(ctx)
			timer.Reset(due.Sub(l.clock.Now()))
			continue
		case <-l.ev.changed:
		case r := <-l.ev.learned:
			l.learned = r
		case <-l.ev.sessions:
			l.sessionsChanged = true
		case <-l.ev.applied:
			l.dataplaneApplied = true
		}
		// Something changed: plan again once a burst has gathered.
		if now := l.clock.Now(); due.Sub(now) > coalesceDelay {
			due = now.Add(coalesceDelay)
			timer.Reset(coalesceDelay)
		}
	}
}

// pass gathers the inputs, plans, applies and publishes the outcome. It
// returns when to plan again if nothing happens before.
func (l *loop) pass(ctx context.Context) time.Time {
	in, err := l.gather(ctx)
	if err != nil {
		l.app.health.set(false, "read API caches: "+err.Error())
		return l.clock.Now().Add(snapshotRetry)
	}
	l.logging = map[string]bool{}
	defer func() { l.logged = l.logging }()
	p := plan(in)
	// The routes of the plan depend on the tunnel being up: when its
	// sync changes that, plan again with what it achieved.
	if st := l.app.syncTunnel(ctx, p); st != in.Tunnel {
		l.tunnel, in.Tunnel = st, st
		p = plan(in)
	}
	if p.Tunnel.Full {
		l.lastFull = in.Now
	}
	l.logPlan(in, p)
	problems := l.app.apply(ctx, p)
	l.complete = p.LearnedComplete

	ready, detail := verdict(p, problems)
	l.app.health.set(ready, detail)
	if ready != l.ready || l.sessionsChanged || in.Now.Sub(l.statusAt) >= statusInterval {
		l.app.status.Publish(statusFor(in, agentState(ready), p.Unavailable))
		l.statusAt, l.sessionsChanged = in.Now, false
	}
	l.ready = ready
	wake := l.statusAt.Add(statusInterval)
	if !p.Wake.IsZero() && p.Wake.Before(wake) {
		wake = p.Wake
	}
	return wake
}

// gather reads the inputs of one plan.
func (l *loop) gather(ctx context.Context) (Inputs, error) {
	now := l.clock.Now()
	snap, err := l.source.Snapshot(ctx)
	if err != nil {
		return Inputs{}, err
	}
	sessions, sessionsErr := l.app.speaker.Sessions(ctx)
	eps, err := l.endpoints.Endpoints()
	if err != nil {
		l.log.Warn("read endpoints from the kernel", zap.Error(err))
	}
	return Inputs{
		Now: now, Config: l.cfg, Snapshot: snap, Secrets: l.readSecrets(ctx, snap),
		Learned: l.learned, Sessions: sessions, SessionsErr: sessionsErr,
		Endpoints: eps, Tunnel: l.tunnel, DataplaneApplied: l.dataplaneApplied,
		LearnedComplete: l.complete, LastFull: l.lastFull,
	}, nil
}

// readSecrets reads every Secret the snapshot's peers and mesh name.
func (l *loop) readSecrets(ctx context.Context, s Snapshot) map[string]SecretRead {
	out := map[string]SecretRead{}
	read := func(name string) {
		if _, done := out[name]; name == "" || done {
			return
		}
		data, err := l.secrets.Secret(ctx, name)
		out[name] = SecretRead{Data: data, Err: err}
	}
	read(s.BGP.MeshPassword.Name)
	for _, p := range s.Peers {
		read(p.Password.Name)
	}
	return out
}

// once logs with log the first time key is seen in a run of passes that
// all see it, so a lasting condition is logged once, not on every pass.
func (l *loop) once(key string, log func()) {
	if !l.logged[key] {
		log()
	}
	l.logging[key] = true
}

// logPlan logs what the plan found that an operator must hear of.
func (l *loop) logPlan(in Inputs, p Plan) {
	for _, e := range in.Snapshot.Problems {
		l.once("invalid "+e.Error(), func() { l.log.Warn("ignoring invalid object", zap.Error(e)) })
	}
	for _, msg := range p.Problems {
		l.once("problem "+msg, func() { l.log.Error(msg) })
	}
	for _, s := range p.Skipped {
		l.once("skipped "+s.Peer.String(), func() {
			l.log.Warn("BGP password secret unavailable; peer skipped", zap.Stringer(logging.KeyPeer, s.Peer),
				zap.String("secret", s.Secret.Name), zap.String("key", s.Secret.Key), zap.NamedError("cause", s.Err))
		})
	}
	for _, s := range p.Kept {
		l.once("kept "+s.Peer.String(), func() {
			l.log.Warn("BGP password secret unreadable; keeping the password last read", zap.Stringer(logging.KeyPeer, s.Peer),
				zap.String("secret", s.Secret.Name), zap.NamedError("cause", s.Err))
		})
	}
	if p.LearnedComplete && !in.LearnedComplete {
		log := l.log.Info
		if len(p.Pending) > 0 {
			log = l.log.Warn
		}
		log("learned routes complete: stale ones are deleted from now on", zap.Int("routes", len(in.Learned.Routes)),
			zap.Duration("after", in.Now.Sub(in.Config.Started).Round(time.Millisecond)), zap.String("because", p.CompleteNote))
	}
}
