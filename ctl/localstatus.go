package ctl

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	v1 "github.com/gingham-net/gingham/api/v1"
)

// DefaultStatusSocket is where gingham-node serves its status on a node
// (GINGHAM_STATUS_SOCKET).
const DefaultStatusSocket = "/var/run/gingham/status.sock"

// SocketStatus reads the local agent's status from its unix socket, so
// `ginghamctl node status` works on a node without API access. It has
// nothing (ErrNoStatus) for other nodes or when no agent listens.
type SocketStatus struct{ Path string }

var _ NodeStatusSource = SocketStatus{}

// NodeStatus asks the agent behind the socket; node must be its node.
func (s SocketStatus) NodeStatus(ctx context.Context, node string) (*v1.GinghamNodeStatus, error) {
	if _, err := os.Stat(s.Path); err != nil {
		return nil, fmt.Errorf("local agent socket %s: %w", s.Path, ErrNoStatus)
	}
	hc := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", s.Path)
		},
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://agent/status", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("local agent socket %s: %v: %w", s.Path, err, ErrNoStatus)
	}
	defer resp.Body.Close()
	var st v1.GinghamNodeStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("local agent socket %s: decode status: %w", s.Path, err)
	}
	if st.Name != node {
		return nil, fmt.Errorf("local agent is node %q, not %q: %w", st.Name, node, ErrNoStatus)
	}
	return &st, nil
}
