package node

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

func TestMetricsAddress(t *testing.T) {
	node := netip.MustParsePrefix("10.0.1.11/24")
	tests := []struct{ in, want, wantErr string }{
		{in: ":9091", want: "10.0.1.11:9091"},
		{in: "0.0.0.0:9091", want: "0.0.0.0:9091"},
		{in: "127.0.0.1:9100", want: "127.0.0.1:9100"},
		{in: "9091", wantErr: "metrics address"},
	}
	for _, tc := range tests {
		got, err := metricsAddress(tc.in, node)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("metricsAddress(%q) = %q, %v; want an error", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("metricsAddress(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestServeMetricsAndHealth: /metrics binds where GINGHAM_METRICS_ADDR
// says (its missing host replaced by the node's address), /livez and
// /readyz stay on the health address, neither serves the other's paths,
// and both servers end with the context.
func TestServeMetricsAndHealth(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "gingham_test_total", Help: "test"}))
	h := newHealth(statusInterval)
	h.set(true, "ok: test")

	// The node's address here is loopback: a host-less address binds it.
	addr, err := metricsAddress(":0", netip.MustParsePrefix("127.0.0.1/8"))
	if err != nil {
		t.Fatal(err)
	}
	metrics, metricsDone, err := serveHTTP(ctx, "/metrics", addr, metricsHandler(reg), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if a := netip.MustParseAddrPort(metrics.String()); a.Addr() != netip.MustParseAddr("127.0.0.1") || a.Port() == 0 {
		t.Fatalf("metrics bound %s, want the node address 127.0.0.1", metrics)
	}
	health, healthDone, err := serveHTTP(ctx, "/livez, /readyz", "127.0.0.1:0", healthHandler(h), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	get := func(addr, path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(metrics.String(), "/metrics"); code != 200 || !strings.Contains(body, "gingham_test_total") {
		t.Errorf("/metrics: %d %q", code, body)
	}
	if code, _ := get(metrics.String(), "/livez"); code != 404 {
		t.Errorf("/livez on the metrics address: %d, want 404", code)
	}
	if code, body := get(health.String(), "/readyz"); code != 200 || !strings.Contains(body, "ok: test") {
		t.Errorf("/readyz: %d %q", code, body)
	}
	if code, _ := get(health.String(), "/metrics"); code != 404 {
		t.Errorf("/metrics on the health address: %d, want 404", code)
	}
	if _, _, err := serveHTTP(ctx, "/metrics", metrics.String(), metricsHandler(reg), zap.NewNop()); err == nil || !strings.Contains(err.Error(), "/metrics") {
		t.Errorf("a busy address: %v, want an error naming what it serves", err)
	}
	cancel()
	<-metricsDone
	<-healthDone
}
