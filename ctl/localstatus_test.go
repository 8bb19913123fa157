package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/gingham-net/gingham/api/v1"
)

// TestSocketStatus reads a node's status from an agent's unix socket (a
// stand-in server speaking the agent's protocol: GET /status → JSON).
func TestSocketStatus(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/status" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(v1.GinghamNodeStatus{ObjectMeta: metav1.ObjectMeta{Name: "n1"},
			Status: v1.GinghamNodeStatusStatus{Sessions: []v1.BGPSessionStatus{{PeerAddress: "10.0.0.2", State: "Established"}}}})
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	ctx := context.Background()
	st, err := SocketStatus{Path: path}.NodeStatus(ctx, "n1")
	if err != nil || len(st.Status.Sessions) != 1 || st.Status.Sessions[0].State != "Established" {
		t.Fatalf("status = %+v, err %v", st, err)
	}
	if _, err := (SocketStatus{Path: path}).NodeStatus(ctx, "n2"); !errors.Is(err, ErrNoStatus) {
		t.Errorf("another node's status: err = %v, want ErrNoStatus", err)
	}
	if _, err := (SocketStatus{Path: filepath.Join(t.TempDir(), "none.sock")}).NodeStatus(ctx, "n1"); !errors.Is(err, ErrNoStatus) {
		t.Errorf("no agent: err = %v, want ErrNoStatus", err)
	}
}
