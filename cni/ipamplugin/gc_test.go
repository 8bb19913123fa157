package ipamplugin_test

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gingham-net/gingham/ipam"
)

// TestPluginGC: GC with a valid list keeps those containers' addresses and
// releases the others of this node and network; other nodes', other
// networks' and tunnel addresses are never touched.
func TestPluginGC(t *testing.T) {
	ctx, alloc := setup(t)
	createPool(t, "gc-pool", "10.40.0.0/24", 26)
	rt := newRuntime(t, "node-g")
	held := map[string]netip.Prefix{}
	for _, id := range []string{"c1", "c2", "c3"} {
		held[id] = rt.add(id, "")
	}
	otherNode := newRuntime(t, "node-h")
	held["c4"] = otherNode.add("c4", "")
	otherNet := newRuntime(t, "node-g")
	otherNet.conf["name"] = "other-net"
	held["c5"] = otherNet.add("c5", "")
	tunnel, err := alloc.AssignTunnelAddr(ctx, "node-g", nil)
	if err != nil {
		t.Fatal(err)
	}

	rt.conf["cniVersion"] = "1.1.0"
	if e := rt.fail("GC", "", ""); e.Code != 7 || !strings.Contains(e.Msg, "valid-attachments") {
		t.Fatalf("GC without a valid list: %+v, want a refusal", e)
	}
	rt.conf["cni.dev/valid-attachments"] = []map[string]string{{"containerID": "c1", "ifname": "eth0"}, {"containerID": "c3", "ifname": "eth0"}}
	for i := range 2 { // a second GC finds nothing more to do
		if res := rt.run("GC", "", ""); res.code != 0 {
			t.Fatalf("GC #%d: exit %d %s %s", i+1, res.code, res.stdout, res.stderr)
		}
	}
	for id, p := range held {
		_, err := alloc.AllocationOf(ctx, p.Addr())
		if want := id != "c2"; (err == nil) != want {
			t.Errorf("%s (%s) allocated = %v after GC, want %v", id, p, err == nil, want)
		}
	}
	if addrs, err := alloc.HandleAddrs(ctx, "k8s-pod-network.c2"); err != nil || len(addrs) != 0 {
		t.Errorf("handle of c2 still holds %v (%v)", addrs, err)
	}
	if _, err := alloc.AllocationOf(ctx, tunnel); err != nil {
		t.Errorf("tunnel address %s released by GC: %v", tunnel, err)
	}
	if got, err := alloc.HandleAddrs(ctx, ipam.TunnelHandle("node-g")); err != nil || len(got) != 1 {
		t.Errorf("tunnel handle %v (%v)", got, err)
	}
}

// TestPluginStatus: STATUS fails with CNI error 50 when the plugin cannot
// serve an ADD, and passes when it can.
func TestPluginStatus(t *testing.T) {
	setup(t)
	tests := []struct {
		name    string
		pool    bool
		mutate  func(map[string]any)
		wantMsg string // "" means success
	}{
		{name: "usable pool", pool: true},
		{name: "no pool", wantMsg: "no enabled IPv4 pool"},
		{name: "kubeconfig missing", pool: true, mutate: func(c map[string]any) { c["kubernetes"] = map[string]any{"kubeconfig": "/nonexistent/kubeconfig"} }, wantMsg: "kubernetes.kubeconfig"},
		{name: "kubeconfig unreadable", pool: true, mutate: func(c map[string]any) { c["kubernetes"] = map[string]any{"kubeconfig": garbageFile(t)} }, wantMsg: "kubernetes.kubeconfig"},
		{name: "API server unreachable", pool: true, mutate: func(c map[string]any) { c["kubernetes"] = map[string]any{"kubeconfig": deadKubeconfig(t)} }, wantMsg: "API server unreachable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			setup(t)
			if tc.pool {
				createPool(t, "status-pool", "10.41.0.0/24", 26)
			}
			rt := newRuntime(t, "node-s")
			rt.conf["cniVersion"] = "1.1.0"
			if tc.mutate != nil {
				tc.mutate(rt.conf)
			}
			if tc.wantMsg == "" {
				if res := rt.run("STATUS", "", ""); res.code != 0 {
					t.Fatalf("STATUS: exit %d %s", res.code, res.stdout)
				}
				return
			}
			if e := rt.fail("STATUS", "", ""); e.Code != 50 || !strings.Contains(e.Msg, tc.wantMsg) {
				t.Fatalf("STATUS: %+v, want code 50 and %q", e, tc.wantMsg)
			}
		})
	}
}

func garbageFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(p, []byte("{{{ not yaml"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPluginLogFile: log_file_path gets the plugin's log lines (JSON, the
// directory created), filtered by log_level.
func TestPluginLogFile(t *testing.T) {
	setup(t)
	createPool(t, "log-pool", "10.42.0.0/24", 26)
	logPath := filepath.Join(t.TempDir(), "log", "cni", "cni.log")
	rt := newRuntime(t, "node-l")
	rt.conf["log_file_path"], rt.conf["log_level"] = logPath, "info"
	rt.add("l1", "")
	rt.conf["log_level"] = "error"
	rt.add("l2", "")
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	var done []string
	for _, l := range lines {
		if l["containerID"] == "l2" && l["level"] != "error" {
			t.Errorf("l2 logged %v below log_level error", l)
		}
		if l["msg"] == "command done" && l["op"] == "ADD" {
			done = append(done, l["containerID"].(string))
		}
	}
	if len(done) != 1 || done[0] != "l1" {
		t.Fatalf("ADDs logged as done: %v, want only l1's (l2's info line is below error): %v", done, lines)
	}
}
