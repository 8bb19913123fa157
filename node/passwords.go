package node

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Secrets holding BGP passwords are re-read at most every secretRefresh,
// each read bounded by secretReadTimeout.
const (
	secretRefresh     = statusInterval
	secretReadTimeout = 2 * time.Second
)

// passwordCache reads the Secrets that hold BGP passwords for the agent's
// loop, its only user.
//
// Invariants:
//   - A Secret that cannot be read (API server unreachable, timeout) keeps
//     the data last read: an API outage must not take the password away
//     from an Established session (the peer would be removed and its
//     routes withdrawn). Only a Secret the API says is gone (NotFound)
//     drops its peers.
//   - A Secret is read at most once per secretRefresh and each read gives
//     up after secretReadTimeout, so an outage stalls the loop for at most
//     that long per Secret and refresh, not on every pass.
type passwordCache struct {
	c         client.Reader
	namespace string
	now       func() time.Time
	secrets   map[string]cachedSecret // by Secret name
}

type cachedSecret struct {
	data   map[string][]byte // last read; nil if never read or NotFound
	readAt time.Time         // last read attempt
	err    error             // NotFound of the last read, else nil
}

func newPasswordCache(c client.Reader, namespace string) *passwordCache {
	return &passwordCache{c: c, namespace: namespace, now: time.Now, secrets: map[string]cachedSecret{}}
}

var _ SecretSource = (*passwordCache)(nil)

// Secret returns the data of the Secret name. On a failed read it returns
// the data last read (nil if none) together with the error.
func (p *passwordCache) Secret(ctx context.Context, name string) (map[string][]byte, error) {
	e, ok := p.secrets[name]
	if ok && p.now().Sub(e.readAt) < secretRefresh {
		return e.data, e.err
	}
	rctx, cancel := context.WithTimeout(ctx, secretReadTimeout)
	defer cancel()
	var sec corev1.Secret
	err := p.c.Get(rctx, client.ObjectKey{Namespace: p.namespace, Name: name}, &sec)
	switch {
	case err == nil:
		p.secrets[name] = cachedSecret{data: sec.Data, readAt: p.now()}
		return sec.Data, nil
	case apierrors.IsNotFound(err):
		err = fmt.Errorf("read secret %s/%s: %w", p.namespace, name, err)
		p.secrets[name] = cachedSecret{readAt: p.now(), err: err}
		return nil, err
	default:
		e.readAt = p.now() // try again after secretRefresh, not on every pass
		p.secrets[name] = e
		return e.data, fmt.Errorf("read secret %s/%s: %w", p.namespace, name, err)
	}
}
