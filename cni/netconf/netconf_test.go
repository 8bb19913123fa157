package netconf

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/google/go-cmp/cmp"
)

type testConf struct {
	types.PluginConf
	Common
	MTU    int    `json:"mtu"`
	Hidden string `json:"-"`
	Plain  string
	inner  string //nolint:unused // unexported fields carry no key
}

func TestKeys(t *testing.T) {
	want := []string{"Plain", "capabilities", "cni.dev/valid-attachments", "cniVersion", "dns", "ipam", "kubeconfig",
		"kubernetes", "lock_file", "log_file_path", "log_level", "mtu", "name", "nodename", "prevResult", "type"}
	if diff := cmp.Diff(want, Keys(&testConf{})); diff != "" {
		t.Errorf("Keys (-want +got):\n%s", diff)
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		section string // "" checks the top level
		wantErr string // substring; "" means accepted
	}{
		{name: "known and standard keys", doc: `{"cniVersion":"1.1.0","name":"n","type":"t","mtu":1,"nodename":"x","runtimeConfig":{},"args":{},"prevResult":{},"cni.dev/valid-attachments":[],"cni.dev/attachments":[]}`},
		{name: "unknown top-level key named", doc: `{"name":"n","datastore_type":"kubernetes"}`, wantErr: `unknown key "datastore_type"`},
		{name: "camelCase spelling refused", doc: `{"name":"n","stateDir":"/x","logLevel":"info"}`, wantErr: `unknown key "logLevel", "stateDir"`},
		{name: "kubernetes section", doc: `{"kubernetes":{"kubeconfig":"/k"}}`, section: "kubernetes"},
		{name: "unknown kubernetes key named with its path", doc: `{"kubernetes":{"kubeconfig":"/k","k8s_api_root":"https://x"}}`, section: "kubernetes", wantErr: `unknown key "kubernetes.k8s_api_root"`},
		{name: "missing section passes", doc: `{"name":"n"}`, section: "kubernetes"},
		{name: "null section passes", doc: `{"kubernetes":null}`, section: "kubernetes"},
		{name: "section not an object", doc: `{"kubernetes":"x"}`, section: "kubernetes", wantErr: "in kubernetes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.section == "" {
				err = CheckPlugin([]byte(tc.doc), &testConf{})
			} else {
				err = CheckSection([]byte(tc.doc), tc.section, Kubernetes{})
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestCommonCheck(t *testing.T) {
	tests := []struct {
		name           string
		doc            string
		wantKubeconfig string
		wantErr        string
	}{
		{name: "calico spelling", doc: `{"kubernetes":{"kubeconfig":"/k"}}`, wantKubeconfig: "/k"},
		{name: "legacy spelling", doc: `{"kubeconfig":"/old"}`, wantKubeconfig: "/old"},
		{name: "both agree", doc: `{"kubeconfig":"/k","kubernetes":{"kubeconfig":"/k"}}`, wantKubeconfig: "/k"},
		{name: "both disagree", doc: `{"kubeconfig":"/a","kubernetes":{"kubeconfig":"/b"}}`, wantErr: "disagree"},
		{name: "bad level named", doc: `{"log_level":"loud"}`, wantErr: "log_level"},
		{name: "calico level spelling", doc: `{"log_level":"WARNING"}`},
		{name: "unknown kubernetes key", doc: `{"kubernetes":{"kubeconfig":"/k","node_name":"n"}}`, wantErr: "kubernetes.node_name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c Common
			if err := json.Unmarshal([]byte(tc.doc), &c); err != nil {
				t.Fatal(err)
			}
			err := c.Check([]byte(tc.doc))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := c.KubeconfigPath(); got != tc.wantKubeconfig {
				t.Errorf("kubeconfig = %q, want %q", got, tc.wantKubeconfig)
			}
		})
	}
}

// TestLoggerFile: log_file_path is created with its directory, entries are
// appended as JSON lines, and log_level filters.
func TestLoggerFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "var", "log", "gingham", "cni", "cni.log")
	for i, level := range []string{"info", "error"} {
		c := Common{LogLevel: level, LogFilePath: path}
		log, closeLog, err := c.NewLogger()
		if err != nil {
			t.Fatal(err)
		}
		log.Debug("dropped-debug")
		log.Info("kept-info-" + level)
		log.Error("kept-error-" + level)
		closeLog()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("after logger %d: %v", i, err)
		}
		got := string(b)
		for _, want := range []string{"kept-info-info", "kept-error-info", "kept-error-error"}[:1+2*i] {
			if !strings.Contains(got, want) {
				t.Errorf("level %s: log lacks %q:\n%s", level, want, got)
			}
		}
		for _, banned := range []string{"dropped-debug", "kept-info-error"} {
			if strings.Contains(got, banned) {
				t.Errorf("level %s: log has %q:\n%s", level, banned, got)
			}
		}
	}
	b, _ := os.ReadFile(path)
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil || m["msg"] == nil || m["level"] == nil {
			t.Errorf("not a JSON log line: %q (%v)", line, err)
		}
	}
}

func TestLoggerDefaultsAndErrors(t *testing.T) {
	if _, closeLog, err := (&Common{}).NewLogger(); err != nil {
		t.Fatalf("stderr logger: %v", err)
	} else {
		closeLog()
	}
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// A path under a regular file cannot be created.
	if _, _, err := (&Common{LogFilePath: filepath.Join(file, "x.log")}).NewLogger(); err == nil || !strings.Contains(err.Error(), "log_file_path") {
		t.Fatalf("err = %v, want one naming log_file_path", err)
	}
	if _, _, err := (&Common{LogLevel: "chatty"}).NewLogger(); err == nil || !strings.Contains(err.Error(), "log_level") {
		t.Fatalf("err = %v, want one naming log_level", err)
	}
}

func TestHasKey(t *testing.T) {
	for doc, want := range map[string]bool{`{"a":null}`: true, `{"a":[]}`: true, `{"b":1}`: false, `nope`: false} {
		if got := HasKey([]byte(doc), "a"); got != want {
			t.Errorf("HasKey(%s) = %v, want %v", doc, got, want)
		}
	}
}
