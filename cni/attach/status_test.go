package attach_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gingham-net/gingham/cni/attach/attachtest"
)

// kubeconfigFor writes a kubeconfig whose server is url.
func kubeconfigFor(t *testing.T, url string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kubeconfig")
	doc := "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: '" + url + "'}}]\n" +
		"contexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\nusers: [{name: u, user: {token: x}}]\n"
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeIPAM is a CNI_PATH holding an IPAM plugin "fake-ipam" that exits
// with code for every command.
func fakeIPAM(t *testing.T, fail bool) string {
	t.Helper()
	dir := t.TempDir()
	script := "#!/bin/sh\nexit 0\n"
	if fail {
		script = "#!/bin/sh\necho '{\"cniVersion\":\"1.1.0\",\"code\":50,\"msg\":\"ipam says no\"}'\nexit 1\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "fake-ipam"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestStatus: STATUS fails with CNI error 50 while the plugin cannot serve
// an ADD (no MTU from the agent yet, kubeconfig missing or unreadable, API
// server down or refusing the token, IPAM not ready), and passes otherwise.
func TestStatus(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/version" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(`{"major":"1","minor":"35"}`))
	}))
	defer api.Close()
	expired := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"kind":"Status","code":401,"message":"Unauthorized"}`, http.StatusUnauthorized)
	}))
	defer expired.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	garbage := filepath.Join(t.TempDir(), "garbage")
	if err := os.WriteFile(garbage, []byte("{{{"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		mtu        int    // 0: read the state dir (empty here)
		kubeconfig string // "": none configured
		ipamFails  bool
		wantCode   uint // 0: success
		wantMsg    string
	}{
		{name: "ready", mtu: 1400, kubeconfig: kubeconfigFor(t, api.URL)},
		{name: "ready without a kubeconfig", mtu: 1400},
		{name: "agent has not written the MTU", wantCode: 50, wantMsg: "agent not ready"},
		{name: "kubeconfig missing", mtu: 1400, kubeconfig: "/nonexistent/kubeconfig", wantCode: 50, wantMsg: "kubernetes.kubeconfig"},
		{name: "kubeconfig unreadable", mtu: 1400, kubeconfig: garbage, wantCode: 50, wantMsg: "kubernetes.kubeconfig"},
		{name: "API server down", mtu: 1400, kubeconfig: kubeconfigFor(t, downURL), wantCode: 50, wantMsg: "connection refused"},
		{name: "token refused", mtu: 1400, kubeconfig: kubeconfigFor(t, expired.URL), wantCode: 50, wantMsg: "provide credentials"},
		{name: "IPAM not ready", mtu: 1400, ipamFails: true, wantCode: 50, wantMsg: "ipam says no"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conf := map[string]any{"cniVersion": "1.1.0", "name": "k8s-pod-network", "type": "gingham", "mtu": tc.mtu,
				"state_dir": t.TempDir(), "ipam": map[string]any{"type": "fake-ipam"}}
			if tc.kubeconfig != "" {
				conf["kubernetes"] = map[string]any{"kubeconfig": tc.kubeconfig}
			}
			b, _ := json.Marshal(conf)
			r := attachtest.Self(nil)
			r.Path = fakeIPAM(t, tc.ipamFails)
			out, err := r.Run(attachtest.Call{Command: "STATUS", Conf: b})
			if tc.wantCode == 0 {
				if err != nil {
					t.Fatalf("STATUS: %v", err)
				}
				return
			}
			var e struct {
				Code uint   `json:"code"`
				Msg  string `json:"msg"`
			}
			if err == nil || json.Unmarshal(out, &e) != nil || e.Code != tc.wantCode || !strings.Contains(e.Msg, tc.wantMsg) {
				t.Fatalf("STATUS = %s (%v), want code %d with %q", out, err, tc.wantCode, tc.wantMsg)
			}
		})
	}
}
