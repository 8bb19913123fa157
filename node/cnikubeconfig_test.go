package node

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"k8s.io/client-go/tools/clientcmd"
)

// cniKubeconfigDoc is what install-cni writes (deploy/install-cni.sh).
func cniKubeconfigDoc(token string) string {
	return `apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://10.96.0.1:443
    certificate-authority-data: Y2EtZGF0YQ==
users:
- name: gingham-cni
  user:
    token: ` + token + `
contexts:
- name: gingham-cni
  context:
    cluster: local
    user: gingham-cni
current-context: gingham-cni
`
}

func TestWithToken(t *testing.T) {
	tests := []struct {
		name        string
		doc, token  string
		wantChanged bool
		wantErr     string
	}{
		{name: "same token", doc: cniKubeconfigDoc("t1"), token: "t1"},
		{name: "rotated token", doc: cniKubeconfigDoc("t1"), token: "t2", wantChanged: true},
		{name: "empty token", doc: cniKubeconfigDoc("t1"), token: "", wantErr: "empty"},
		{name: "not a kubeconfig", doc: "{{", token: "t", wantErr: "parse"},
		{name: "no current context", doc: strings.Replace(cniKubeconfigDoc("t1"), "current-context: gingham-cni", "current-context: nope", 1), token: "t2", wantErr: "nope"},
		{name: "context without its user", doc: strings.Replace(cniKubeconfigDoc("t1"), "    user: gingham-cni", "    user: ghost", 1), token: "t2", wantErr: "ghost"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, changed, err := withToken([]byte(tc.doc), tc.token)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || changed != tc.wantChanged {
				t.Fatalf("changed = %v, %v; want %v", changed, err, tc.wantChanged)
			}
			cfg, err := clientcmd.Load(out)
			if err != nil {
				t.Fatal(err)
			}
			if u := cfg.AuthInfos["gingham-cni"]; u.Token != tc.token {
				t.Errorf("token %q, want %q", u.Token, tc.token)
			}
			if cl := cfg.Clusters["local"]; cl.Server != "https://10.96.0.1:443" || string(cl.CertificateAuthorityData) != "ca-data" {
				t.Errorf("cluster changed: %+v", cl)
			}
		})
	}
}

// TestCNIKubeconfigRefresh runs the refresher on fake time: a rotated
// service account token reaches the kubeconfig within one interval, by an
// atomic replacement with mode 0600; an unchanged token rewrites nothing; a
// missing kubeconfig is logged once; the goroutine ends with its context.
func TestCNIKubeconfigRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		kc, tok := filepath.Join(dir, "gingham-kubeconfig"), filepath.Join(dir, "token")
		write := func(path, data string, mode os.FileMode) {
			t.Helper()
			if err := os.WriteFile(path, []byte(data), mode); err != nil {
				t.Fatal(err)
			}
		}
		write(kc, cniKubeconfigDoc("t1"), 0o644)
		write(tok, "t1\n", 0o600)
		core, logs := observer.New(zap.InfoLevel)
		k := &cniKubeconfig{path: kc, tokenFile: tok, interval: 30 * time.Second, log: zap.New(core)}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); k.run(ctx) }()

		stat := func() os.FileInfo {
			t.Helper()
			fi, err := os.Stat(kc)
			if err != nil {
				t.Fatal(err)
			}
			return fi
		}
		token := func() string {
			t.Helper()
			cfg, err := clientcmd.LoadFromFile(kc)
			if err != nil {
				t.Fatal(err)
			}
			return cfg.AuthInfos["gingham-cni"].Token
		}
		synctest.Wait()
		first := stat()
		if token() != "t1" || first.Mode().Perm() != 0o644 {
			t.Fatalf("an unchanged token rewrote the file (mode %o)", first.Mode().Perm())
		}

		steps := []struct {
			name      string
			do        func()
			wantToken string
			rewritten bool
		}{
			{name: "kubelet rotates the token", do: func() { write(tok, "t2\n", 0o600) }, wantToken: "t2", rewritten: true},
			{name: "nothing changes", do: func() {}, wantToken: "t2"},
			{name: "kubeconfig gone: logged, not recreated", do: func() { os.Remove(kc) }},
			{name: "install-cni writes it again", do: func() { write(kc, cniKubeconfigDoc("t1"), 0o644) }, wantToken: "t2", rewritten: true},
		}
		for _, st := range steps {
			st.do()
			before, _ := os.Stat(kc)
			time.Sleep(k.interval)
			synctest.Wait()
			if st.wantToken == "" {
				if _, err := os.Stat(kc); !os.IsNotExist(err) {
					t.Errorf("%s: kubeconfig exists again: %v", st.name, err)
				}
				continue
			}
			now := stat()
			if got := token(); got != st.wantToken {
				t.Errorf("%s: token %q, want %q", st.name, got, st.wantToken)
			}
			if rewritten := before == nil || !os.SameFile(before, now); rewritten != st.rewritten {
				t.Errorf("%s: rewritten = %v, want %v", st.name, rewritten, st.rewritten)
			}
			if st.rewritten && now.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %o, want 600", st.name, now.Mode().Perm())
			}
		}
		if n := logs.FilterMessageSnippet("cannot refresh").Len(); n != 1 {
			t.Errorf("%d warnings for the missing kubeconfig, want 1: %v", n, logs.All())
		}
		if n := logs.FilterMessageSnippet("updated to the rotated").Len(); n != 2 {
			t.Errorf("%d update logs, want 2", n)
		}
		leftovers, _ := filepath.Glob(filepath.Join(dir, ".*"))
		if len(leftovers) != 0 {
			t.Errorf("temporary files left: %v", leftovers)
		}
		cancel()
		<-done
	})
}
