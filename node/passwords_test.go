package node

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1 "github.com/gingham-net/gingham/api/v1"
	"github.com/gingham-net/gingham/internal/kube"
)

var errUnreachable = errors.New("dial tcp 127.0.0.1:6443: connect: connection refused")

// outageClient is a fake API whose reads and writes fail while down is set.
func outageClient(down *atomic.Bool, objs ...client.Object) client.Client {
	fail := func() error {
		if down.Load() {
			return errUnreachable
		}
		return nil
	}
	return fake.NewClientBuilder().WithScheme(kube.Scheme()).WithObjects(objs...).
		WithStatusSubresource(&v1.GinghamNodeStatus{}).
		WithInterceptorFuncs(interceptor.Funcs{
			Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
				if err := fail(); err != nil {
					return err
				}
				return c.Get(ctx, key, obj, opts...)
			},
			Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
				if err := fail(); err != nil {
					return err
				}
				return c.Create(ctx, obj, opts...)
			},
			SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
				if err := fail(); err != nil {
					return err
				}
				return c.SubResource(sub).Update(ctx, obj, opts...)
			},
		}).Build()
}

// TestPasswordCacheKeepsPasswordThroughOutage is the unit form of what
// TestReliabilityAPIServerOutage (test/e2e) found: with the API server
// unreachable, a TCP-MD5 peer lost its password, was removed, and every
// mesh session went down. Steps carry state.
func TestPasswordCacheKeepsPasswordThroughOutage(t *testing.T) {
	var down atomic.Bool
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "gingham-system", Name: "mesh"}, Data: map[string][]byte{"password": []byte("one")}}
	c := outageClient(&down, sec)
	now := time.Unix(1000, 0)
	p := newPasswordCache(c, "gingham-system")
	p.now = func() time.Time { return now }
	ctx := context.Background()

	steps := []struct {
		name    string
		advance time.Duration
		down    bool
		change  string // new password written to the Secret first ("-": delete it)
		want    string // "" : no password
		wantErr bool
	}{
		{name: "first read", want: "one"},
		{name: "outage within the refresh: cached, no read", down: true, want: "one"},
		{name: "outage after the refresh: last password kept, error reported", advance: secretRefresh, down: true, want: "one", wantErr: true},
		{name: "still down, next pass: kept without another read", advance: time.Second, down: true, want: "one"},
		{name: "API back, password rotated: read after the refresh", advance: secretRefresh, change: "two", want: "two"},
		{name: "Secret deleted: no password", advance: secretRefresh, change: "-", wantErr: true},
		{name: "deleted and API down: still none", advance: secretRefresh, down: true, wantErr: true},
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		switch s.change {
		case "":
		case "-":
			if err := c.Delete(ctx, sec); err != nil {
				t.Fatal(err)
			}
		default:
			sec.Data["password"] = []byte(s.change)
			if err := c.Update(ctx, sec); err != nil {
				t.Fatal(err)
			}
		}
		down.Store(s.down)
		data, err := p.Secret(ctx, "mesh")
		if got := string(data["password"]); got != s.want || (err != nil) != s.wantErr {
			t.Errorf("%s: password %q, err %v; want %q, error %v", s.name, got, err, s.want, s.wantErr)
		}
	}
}

// TestStatusWriterOutlastsOutage: handing a status over never waits for the
// API; writes that fail are retried and the newest status wins.
func TestStatusWriterOutlastsOutage(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	c := outageClient(&down)
	pub := newStatusPublisher("n1", &localStatus{})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); statusWriter(ctx, c, "n1", pub.mailbox, zap.NewNop()) }()
	defer func() { cancel(); wg.Wait() }()

	for i, state := range []string{"Starting", "Degraded", "Ready"} {
		pub.Publish(v1.GinghamNodeStatusStatus{AgentState: state, RoutesLearned: int64(i + 1)})
	}
	time.Sleep(2 * statusRetry) // a few failed attempts
	down.Store(false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var st v1.GinghamNodeStatus
		err := c.Get(ctx, client.ObjectKey{Name: "n1"}, &st)
		if err == nil && st.Status.AgentState == "Ready" && st.Status.RoutesLearned == 3 && st.Status.LastUpdated != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("status not written after the API returned: %+v (err %v)", st.Status, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
