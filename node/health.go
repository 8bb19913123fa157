package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// health is what /livez and /readyz report. The agent's loop writes it;
// the HTTP handlers read it (guarded by mu).
type health struct {
	mu        sync.Mutex
	lastLoop  time.Time
	ready     bool
	detail    string
	staleness time.Duration
	now       func() time.Time
}

func newHealth(staleness time.Duration) *health {
	return &health{staleness: staleness, now: time.Now, detail: "starting"}
}

// set records one pass of the agent's loop and its readiness.
func (h *health) set(ready bool, detail string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastLoop, h.ready, h.detail = h.now(), ready, detail
}

func (h *health) live() (bool, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lastLoop.IsZero() {
		return true, "starting"
	}
	if age := h.now().Sub(h.lastLoop); age > h.staleness {
		return false, fmt.Sprintf("agent loop last ran %s ago", age.Round(time.Second))
	}
	return true, "ok"
}

func (h *health) readiness() (bool, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ready, h.detail
}

func (h *health) handler(check func() (bool, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		ok, detail := check()
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, detail)
	}
}

// healthHandler serves /livez and /readyz.
func healthHandler(h *health) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/livez", h.handler(h.live))
	mux.Handle("/readyz", h.handler(h.readiness))
	return mux
}

// metricsHandler serves /metrics.
func metricsHandler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

// metricsAddress is where /metrics is served: GINGHAM_METRICS_ADDR, its
// missing host replaced by the node's address (a Prometheus on the node
// reaches it there, unlike 127.0.0.1 of the health server).
func metricsAddress(addr string, nodeIP netip.Prefix) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("metrics address %q: %w", addr, err)
	}
	if host == "" {
		host = nodeIP.Addr().String()
	}
	return net.JoinHostPort(host, port), nil
}

// serveHTTP serves handler on addr until ctx ends. The listener is bound
// before it returns (a bad or busy address is its error); done is closed
// once the server has shut down and both of its goroutines have ended.
func serveHTTP(ctx context.Context, what, addr string, handler http.Handler, log *zap.Logger) (bound net.Addr, done <-chan struct{}, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen for %s on %s: %w", what, addr, err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	served, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("HTTP server stopped", zap.String("serves", what), zap.Error(err))
		}
	}()
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
		case <-served:
		}
		shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
		<-served
	}()
	log.Info("serving", zap.String("serves", what), zap.Stringer("addr", ln.Addr()))
	return ln.Addr(), stopped, nil
}
