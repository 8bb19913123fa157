package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/internal/testenv"
	"github.com/gingham-net/gingham/ipam"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

type result struct {
	code        int
	out, errOut string
}

// ginghamctl runs the whole command tree in-process against the test API
// server, as the binary would (the kubeconfig comes from --kubeconfig).
func ginghamctl(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return ginghamctlWith(t, nil, stdin, args...)
}

// ginghamctlWith runs ginghamctl with the dependencies changed by with.
func ginghamctlWith(t *testing.T, with func(*Deps), stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	if env != nil {
		args = append(args, "--kubeconfig", env.Kubeconfig)
	}
	d := Deps{
		Streams:  IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut},
		Clients:  KubeClients{},
		Hostname: func() (string, error) { return "e2e-node", nil },
	}
	if with != nil {
		with(&d)
	}
	code := Run(context.Background(), args, d)
	return result{code, out.String(), errOut.String()}
}

// step is one command of a scenario; state carries over between steps.
type step struct {
	name    string
	stdin   string
	args    []string
	deps    func(*Deps) // changes to the default dependencies
	code    int
	out     []string // substrings of stdout
	errOut  []string // substrings of stderr
	noErr   bool     // stderr must be empty
	outLine []string // the fields of some stdout line, exactly
}

func runSteps(t *testing.T, steps []step) {
	t.Helper()
	for _, s := range steps {
		r := ginghamctlWith(t, s.deps, s.stdin, s.args...)
		if r.code != s.code {
			t.Fatalf("%s: ginghamctl %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", s.name, strings.Join(s.args, " "), r.code, s.code, r.out, r.errOut)
		}
		for _, w := range s.out {
			if !strings.Contains(r.out, w) {
				t.Errorf("%s: stdout lacks %q:\n%s", s.name, w, r.out)
			}
		}
		for _, w := range s.errOut {
			if !strings.Contains(r.errOut, w) {
				t.Errorf("%s: stderr lacks %q:\n%s", s.name, w, r.errOut)
			}
		}
		if s.noErr && r.errOut != "" {
			t.Errorf("%s: unexpected stderr:\n%s", s.name, r.errOut)
		}
		if s.outLine != nil && !hasLine(r.out, s.outLine) {
			t.Errorf("%s: no stdout line with fields %q:\n%s", s.name, s.outLine, r.out)
		}
	}
}

func hasLine(out string, fields []string) bool {
	want := strings.Join(fields, " ")
	for _, l := range strings.Split(out, "\n") {
		if strings.Join(strings.Fields(l), " ") == want {
			return true
		}
	}
	return false
}

const poolA = `apiVersion: gingham.dev/v1
kind: IPPool
metadata: {name: pool-a}
spec: {cidr: 10.0.0.0/16}
`

// TestEndToEndPoolLifecycle: create → get -o wide → patch → apply a
// directory → delete, with the refusals on the way.
func TestEndToEndPoolLifecycle(t *testing.T) {
	testenv.Need(t, env)
	wideHeader := []string{"NAME", "CIDR", "NAT", "IPIPMODE", "VXLANMODE", "DISABLED", "DISABLEBGPEXPORT", "SELECTOR"}
	runSteps(t, []step{
		{name: "empty cluster", args: []string{"get", "ippools", "-o", "wide"}, outLine: wideHeader, errOut: []string{"No IPPool resources found."}},
		{name: "empty yaml", args: []string{"get", "ippools", "-o", "yaml"}, out: []string{"kind: IPPoolList", "items: []"}},
		{name: "create from stdin", stdin: poolA, args: []string{"create", "-f", "-"}, out: []string{"Successfully created 1 'IPPool' resource(s)"}, noErr: true},
		{name: "create again fails", stdin: poolA, args: []string{"create", "-f", "-"}, code: 1, errOut: []string{`failed to create 'IPPool' resource "pool-a"`, "already exists"}},
		{name: "create --skip-exists", stdin: poolA, args: []string{"create", "--skip-exists", "-f", "-"}, out: []string{"Successfully created 1 'IPPool' resource(s)"}},
		{name: "get wide", args: []string{"get", "ippools", "-o", "wide"}, outLine: []string{"pool-a", "10.0.0.0/16", "false", "Never", "Never", "false", "false", "all()"}},
		{name: "get narrow by short name", args: []string{"get", "ipp", "pool-a"}, outLine: []string{"pool-a", "10.0.0.0/16", "all()"}},
		{name: "patch ipipMode", args: []string{"patch", "ippool", "pool-a", "-p", `{"spec":{"ipipMode":"Always"}}`}, out: []string{"Successfully patched 1 'IPPool' resource"}},
		{name: "patch natOutgoing (json patch)", args: []string{"patch", "pool", "pool-a", "--type", "json", "-p", `[{"op":"add","path":"/spec/natOutgoing","value":true}]`}, out: []string{"Successfully patched"}},
		{name: "see the patches", args: []string{"get", "ippool", "pool-a", "-o", "wide"}, outLine: []string{"pool-a", "10.0.0.0/16", "true", "Always", "Never", "false", "false", "all()"}},
		{name: "yaml of one pool is bare", args: []string{"get", "ippool", "pool-a", "-o", "yaml"}, out: []string{"kind: IPPool\n", "ipipMode: Always"}},
		{name: "patch cannot change cidr", args: []string{"patch", "ippool", "pool-a", "-p", `{"spec":{"cidr":"10.9.0.0/16"}}`}, code: 1, errOut: []string{`failed to patch 'IPPool' resource "pool-a"`, "spec.cidr", "cannot be modified"}},
		{name: "patch with unknown field", args: []string{"patch", "ippool", "pool-a", "-p", `{"spec":{"colour":"red"}}`}, code: 1, errOut: []string{"colour"}},
		{name: "patch strategic is explained", args: []string{"patch", "ippool", "pool-a", "--type", "strategic", "-p", `{}`}, code: 1, errOut: []string{"not supported by custom resources"}},
		{
			name: "overlap refused before writing", code: 1,
			stdin:  poolA + "---\napiVersion: gingham.dev/v1\nkind: IPPool\nmetadata: {name: pool-z}\nspec: {cidr: 10.30.0.0/16}\n---\napiVersion: gingham.dev/v1\nkind: IPPool\nmetadata: {name: pool-b}\nspec: {cidr: 10.0.128.0/17}\n",
			args:   []string{"apply", "-f", "-"},
			errOut: []string{`failed to apply 'IPPool' resource "pool-b"`, "error with field spec.cidr = '10.0.128.0/17' (IPPool(pool-b) CIDR overlaps with IPPool(pool-a) CIDR 10.0.0.0/16)", "nothing was written: 1 of 3"},
		},
		{name: "nothing of the refused batch exists", args: []string{"get", "ippool", "pool-z"}, code: 1, errOut: []string{"not found"}},
		{name: "apply a directory", args: []string{"apply", "-f", "testdata/apply-dir"}, out: []string{"Successfully applied 1 'BGPPeer' resource(s)", "Successfully applied 2 'IPPool' resource(s)"}, noErr: true},
		{name: "apply the directory again", args: []string{"apply", "-f", "testdata/apply-dir"}, out: []string{"Successfully applied 2 'IPPool' resource(s)"}},
		{name: "replace needs existing", stdin: strings.NewReplacer("pool-a", "pool-new", "10.0.0.0", "10.99.0.0").Replace(poolA), args: []string{"replace", "-f", "-"}, code: 1, errOut: []string{`failed to replace 'IPPool' resource "pool-new"`, "not found"}},
		{name: "directory pools listed", args: []string{"get", "pools", "-o", "custom-columns=NAME,CIDR,IPIPMODE"}, outLine: []string{"pool-c", "10.20.0.0/16", "CrossSubnet"}},
		{
			name: "partial apply says which", code: 1,
			stdin:  "apiVersion: gingham.dev/v1\nkind: BGPPeer\nmetadata: {name: peer-ok}\nspec: {peerIP: 192.0.2.9, asNumber: 65009}\n---\napiVersion: gingham.dev/v1\nkind: BGPPeer\nmetadata: {name: peer-bad}\nspec: {peerIP: 192.0.2.10}\n",
			args:   []string{"apply", "-f", "-"},
			out:    []string{"Partial success: applied 1 out of 2 resources:", `applied 'BGPPeer' resource "peer-ok"`},
			errOut: []string{`failed to apply 'BGPPeer' resource "peer-bad"`, "spec.asNumber"},
		},
		{name: "peers table", args: []string{"get", "bgppeers"}, outLine: []string{"tor-a", "192.0.2.1", "(global)", "65001"}},
		{name: "label", args: []string{"label", "ippool", "pool-c", "rack=r1"}, out: []string{"Successfully labeled 1 'IPPool' resource"}},
		{name: "label needs --overwrite", args: []string{"label", "ippool", "pool-c", "rack=r2"}, code: 1, errOut: []string{"--overwrite"}},
		{name: "select by label", args: []string{"get", "ippools", "-l", "rack=r1", "-o", "custom-columns=NAME:.metadata.name"}, outLine: []string{"pool-c"}},
		{name: "examples apply", args: []string{"apply", "-f", "../deploy/examples/tor-peering.yaml"}, out: []string{"Successfully applied 1 'BGPConfiguration' resource(s)", "Successfully applied 2 'BGPPeer' resource(s)", "Successfully applied 2 'IPPool' resource(s)"}},
		{name: "delete examples", args: []string{"delete", "-f", "../deploy/examples/tor-peering.yaml"}, out: []string{"Successfully deleted 1 'BGPConfiguration' resource(s)", "Successfully deleted 2 'IPPool' resource(s)"}},
		{name: "delete pool safely", args: []string{"delete", "ippool", "pool-a"}, out: []string{"Successfully deleted 1 'IPPool' resource(s)"}, errOut: []string{"cannot release block affinities"}},
		{name: "pool is gone", args: []string{"get", "ippool", "pool-a"}, code: 1, errOut: []string{`failed to get 'IPPool' resource "pool-a"`, "not found"}},
		{name: "delete directory", args: []string{"delete", "-f", "testdata/apply-dir"}, out: []string{"Successfully deleted 2 'IPPool' resource(s)", "Successfully deleted 1 'BGPPeer' resource(s)"}},
		{name: "delete missing", args: []string{"delete", "ippool", "nope"}, code: 1, errOut: []string{`Failed to delete 'IPPool' resource "nope"`, "not found"}},
		{name: "delete missing, skipped", args: []string{"delete", "ippool", "nope", "--skip-not-exists"}, out: []string{"Successfully deleted 1 'IPPool' resource(s)"}},
		{name: "unknown kind", args: []string{"get", "colours"}, code: 1, errOut: []string{`unknown resource type "colours"`}},
		{name: "bad output", args: []string{"get", "ippools", "-o", "xml"}, code: 1, errOut: []string{`unknown output format "xml"`}},
		{name: "empty again", args: []string{"delete", "bgppeer", "peer-ok"}, out: []string{"Successfully deleted"}},
	})
}

// invalidObjects are the Foundation's invalid objects, read from
// api/v1/crd_validation_test.go so both tests refuse the same set.
func invalidObjects(t *testing.T) [][4]string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "api", "v1", "crd_validation_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	lit := `("(?:[^"\\]|\\.)*")`
	re := regexp.MustCompile(`(?m)^\s*\{` + lit + `, ` + lit + `, ` + lit + `, ` + lit + `\},\s*$`)
	var out [][4]string
	for _, m := range re.FindAllStringSubmatch(string(src), -1) {
		var row [4]string
		for i := range row {
			if row[i], err = strconv.Unquote(m[i+1]); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, row)
	}
	if len(out) < 30 {
		t.Fatalf("found only %d invalid objects in crd_validation_test.go", len(out))
	}
	return out
}

// TestEndToEndInvalidObjectsRefused: every invalid object is refused with
// exit code 1 and a message naming the field.
func TestEndToEndInvalidObjectsRefused(t *testing.T) {
	testenv.Need(t, env)
	for _, row := range invalidObjects(t) {
		name, doc, field, text := row[0], row[1], row[2], row[3]
		t.Run(name, func(t *testing.T) {
			r := ginghamctl(t, "apiVersion: gingham.dev/v1\n"+doc, "create", "-f", "-")
			if r.code != 1 {
				ginghamctl(t, "apiVersion: gingham.dev/v1\n"+doc, "delete", "-f", "-")
				t.Fatalf("exit %d, want 1; stdout %q", r.code, r.out)
			}
			if !strings.Contains(r.errOut, "failed to create '") || !strings.Contains(r.errOut, field) || !strings.Contains(r.errOut, text) {
				t.Errorf("stderr does not name %q with %q:\n%s", field, text, r.errOut)
			}
			if r.out != "" {
				t.Errorf("stdout not empty: %q", r.out)
			}
		})
	}
}

// TestEndToEndStatusAndIPAM: node status, version and ipam from objects an
// agent would have written.
func TestEndToEndStatusAndIPAM(t *testing.T) {
	testenv.Need(t, env)
	ctx := context.Background()
	st := nodeStatusFixture("e2e-node")
	status := st.Status
	if err := env.Client.Create(ctx, st); err != nil {
		t.Fatal(err)
	}
	st.Status = status
	if err := env.Client.Status().Update(ctx, st); err != nil {
		t.Fatal(err)
	}
	pool := &v1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "ipam-pool"}, Spec: v1.IPPoolSpec{CIDR: "10.244.0.0/16"}}
	bc := netip.MustParsePrefix("10.244.0.0/30")
	block := &v1.IPAMBlock{ObjectMeta: metav1.ObjectMeta{Name: ipam.BlockName(bc)}, Spec: v1.IPAMBlockSpec{CIDR: "10.244.0.0/30", Affinity: ptr("host:e2e-node"),
		Allocations: []*int{ptr(0), nil, nil, nil}, Unallocated: []int{1, 2, 3},
		Attributes: []v1.AllocationAttribute{{HandleID: ptr("h1"), Secondary: map[string]string{"pod": "web-1", "namespace": "default", "node": "e2e-node"}}}}}
	aff := &v1.BlockAffinity{ObjectMeta: metav1.ObjectMeta{Name: ipam.AffinityName("e2e-node", bc)}, Spec: v1.BlockAffinitySpec{State: v1.AffinityConfirmed, Node: "e2e-node", CIDR: "10.244.0.0/30"}}
	handle := &v1.IPAMHandle{ObjectMeta: metav1.ObjectMeta{Name: ipam.HandleName("h1")}, Spec: v1.IPAMHandleSpec{HandleID: "h1", Block: map[string]int{"10.244.0.0/30": 1}}}
	for _, o := range []client.Object{pool, block, aff, handle} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, o := range []client.Object{pool, block, aff, handle, st} {
			_ = env.Client.Delete(ctx, o)
		}
	})
	runSteps(t, []step{
		{name: "status of this host", args: []string{"node", "status"}, out: []string{"gingham-node on e2e-node: Ready", "IPv4 BGP status", "| 10.0.0.2     | node-to-node mesh | Established |"}},
		{name: "status of a named node", args: []string{"node", "status", "--node", "e2e-node"}, out: []string{"IPv6 BGP status", "fd00::1"}},
		{name: "status of an unknown node", args: []string{"node", "status", "--node", "ghost"}, code: 1, errOut: []string{`no GinghamNodeStatus "ghost"`}},
		{name: "node status resource table", args: []string{"get", "nodestatus", "-o", "wide"}, outLine: []string{"e2e-node", "Ready", "v0.1.0", "2/3", "12", "10", "2", "2026-01-02T03:04:05Z"}},
		{name: "versions", args: []string{"version"}, out: []string{"Client Version:", "v0.1.0"}, outLine: []string{"v0.1.0", "1", "e2e-node"}},
		{name: "ipam show", args: []string{"ipam", "show", "--show-blocks"}, out: []string{"| IP Pool  | 10.244.0.0/16 | 65536     | 1 (0%)     | 65535 (100%) |", "| Block    | 10.244.0.0/30 | 4         | 1 (25%)    | 3 (75%)      |"}},
		{name: "ipam show ip", args: []string{"ipam", "show", "--ip", "10.244.0.0"}, out: []string{"IP 10.244.0.0 is in use", "Handle ID: h1", "pod: web-1"}},
		{name: "ipam check finds the leak", args: []string{"ipam", "check"}, code: 1, out: []string{"leaked-ip", "default/web-1", "Check complete; found 1 problems."}, errOut: []string{"found 1 problem"}},
	})
	r := ginghamctl(t, "", "ipam", "check", "-o", "json")
	var rep CheckReport
	if err := json.Unmarshal([]byte(r.out), &rep); err != nil || r.code != 1 || len(rep.Problems) != 1 || rep.Problems[0].Type != "leaked-ip" {
		t.Errorf("ipam check -o json: exit %d, report %+v, err %v\n%s", r.code, rep, err, r.out)
	}
	runSteps(t, []step{
		{name: "ipam release unavailable", args: []string{"ipam", "release", "--ip", "10.244.0.0"}, code: 1, errOut: []string{"not available in this ginghamctl build"}},
		{name: "ipam release", deps: withIPAM, args: []string{"ipam", "release", "--ip", "10.244.0.0"}, out: []string{"Successfully released IP address 10.244.0.0"}},
		{name: "released address is free", args: []string{"ipam", "show", "--ip", "10.244.0.0"}, out: []string{"IP 10.244.0.0 is not assigned"}},
		{name: "delete pool releases affinities", deps: withIPAM, args: []string{"delete", "ippool", "ipam-pool"}, out: []string{"Successfully deleted 1 'IPPool' resource(s)"}, noErr: true},
	})
	var affs v1.BlockAffinityList
	if err := env.Client.List(ctx, &affs); err != nil {
		t.Fatal(err)
	}
	for _, a := range affs.Items {
		if a.Spec.Node == "e2e-node" && a.Spec.State == v1.AffinityConfirmed {
			t.Errorf("affinity %s still confirmed after its pool was deleted", a.Name)
		}
	}
}

func withIPAM(d *Deps) { d.IPAM = AllocatorIPAM }

// TestKubeconfigLoading: without --kubeconfig, $KUBECONFIG, then
// ~/.kube/config are used, as kubectl does.
func TestKubeconfigLoading(t *testing.T) {
	testenv.Need(t, env)
	run := func() result {
		var out, errOut bytes.Buffer
		code := Run(context.Background(), []string{"get", "ippools"}, Deps{Streams: IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, Clients: KubeClients{}})
		return result{code, out.String(), errOut.String()}
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBECONFIG", "")
	if r := run(); r.code != 1 || !strings.Contains(r.errOut, "load cluster configuration") {
		t.Errorf("no configuration: exit %d, stderr %q", r.code, r.errOut)
	}
	t.Setenv("KUBECONFIG", env.Kubeconfig)
	if r := run(); r.code != 0 {
		t.Errorf("$KUBECONFIG: exit %d, stderr %q", r.code, r.errOut)
	}
	t.Setenv("KUBECONFIG", "")
	data, err := os.ReadFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(home, ".kube"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".kube", "config"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if r := run(); r.code != 0 {
		t.Errorf("~/.kube/config: exit %d, stderr %q", r.code, r.errOut)
	}
}
