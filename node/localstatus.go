package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/gingham-net/gingham/api/v1"
)

// StatusPath is the HTTP path of the local status socket: GET returns this
// node's GinghamNodeStatus as JSON, computed at the moment of the request.
const StatusPath = "/status"

// localStatus holds the latest status for the local socket; the loop
// writes it, HTTP handlers read it.
type localStatus struct {
	mu sync.Mutex
	st v1.GinghamNodeStatus
}

func (l *localStatus) set(st v1.GinghamNodeStatus) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.st = st
}

func (l *localStatus) get() v1.GinghamNodeStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	return *l.st.DeepCopy()
}

// listenLocalStatus opens the unix socket `ginghamctl node status` reads
// on this node (never TCP), so it works without API access. A stale
// socket of a previous run is replaced.
func listenLocalStatus(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("local status socket: %w", err)
	}
	_ = os.Remove(path) // a stale socket of a previous run
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("local status socket: %w", err)
	}
	return ln, nil
}

// serveLocalStatus serves l on ln until ctx ends, then removes the socket;
// it returns once the server has stopped. fresh refreshes the BGP sessions
// at request time.
func serveLocalStatus(ctx context.Context, ln net.Listener, l *localStatus, fresh func(context.Context, *v1.GinghamNodeStatus), log *zap.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc(StatusPath, func(w http.ResponseWriter, r *http.Request) {
		st := l.get()
		fresh(r.Context(), &st)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(st)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("local status socket stopped", zap.Error(err))
	}
	<-stopped
	_ = os.Remove(ln.Addr().String())
}

// statusObject wraps a status in its resource, named after the node.
func statusObject(node string, st v1.GinghamNodeStatusStatus) v1.GinghamNodeStatus {
	return v1.GinghamNodeStatus{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1.GroupVersion.String(), Kind: "GinghamNodeStatus"},
		ObjectMeta: metav1.ObjectMeta{Name: node},
		Status:     st,
	}
}
