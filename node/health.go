package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
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

// serveHealth serves /livez, /readyz and /metrics on addr until ctx ends.
func serveHealth(ctx context.Context, addr string, h *health, reg *prometheus.Registry, log *zap.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("/livez", h.handler(h.live))
	mux.Handle("/readyz", h.handler(h.readiness))
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen for health checks on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("health server stopped", zap.Error(err))
		}
	}()
	return nil
}
