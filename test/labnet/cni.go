package labnet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// DefaultConflist is the pod network's CNI configuration (as deployed),
// a text/template over CNIData.
const DefaultConflist = `{"cniVersion":"1.0.0","name":"k8s-pod-network","plugins":[` +
	`{"type":{{json .Plugin}},"kubeconfig":{{json .Kubeconfig}},"nodename":{{json .Node}},` +
	`"stateDir":{{json .StateDir}},"ipam":{{.IPAM}}}]}`

// CNIData fills the conflist template for one node.
type CNIData struct {
	Plugin     string // main plugin type
	Kubeconfig string
	Node       string
	StateDir   string
	IPAM       string // the ipam object, JSON
}

// CNIOptions chooses the plugins pods are attached with. The zero value is
// the product: gingham with gingham-ipam.
type CNIOptions struct {
	Template string // conflist template; DefaultConflist when empty
	Plugin   string // main plugin; "gingham" when empty (e.g. "ptp" to test the harness)
	// HostLocal, when set, replaces gingham-ipam with host-local, giving
	// each node the subnet HostLocal returns.
	HostLocal func(node string) netip.Prefix
}

// Pod is a pod attached through CNI.
type Pod struct {
	Namespace, Name string
	Node            string
	NetNS           string // its network namespace
	ContainerID     string
	IP              netip.Addr
	Result          json.RawMessage // the plugin's CNI result
}

// String is namespace/name.
func (p *Pod) String() string { return p.Namespace + "/" + p.Name }

// Conflist renders the CNI configuration of a node.
func (l *Lab) Conflist(node string, opts CNIOptions) ([]byte, error) {
	d := CNIData{Plugin: opts.Plugin, Kubeconfig: l.NodeKubeconfig(), Node: node,
		StateDir: l.StateDir(node)}
	if d.Plugin == "" {
		d.Plugin = "gingham"
	}
	// Each node's own IPAM lock, as on a real node (never the host's
	// default /var/run/gingham/ipam.lock: the lab's nodes share the host's
	// filesystem).
	ipam := map[string]any{"type": "gingham-ipam", "kubeconfig": d.Kubeconfig, "nodename": node,
		"lock_file": filepath.Join(l.NodeDir(node), "ipam.lock")}
	if opts.HostLocal != nil {
		ipam = map[string]any{"type": "host-local", "dataDir": filepath.Join(l.NodeDir(node), "host-local"),
			"ranges": [][]map[string]string{{{"subnet": opts.HostLocal(node).String()}}},
			"routes": []map[string]string{{"dst": "0.0.0.0/0"}}}
	}
	b, err := json.Marshal(ipam)
	if err != nil {
		return nil, fmt.Errorf("render conflist: %w", err)
	}
	d.IPAM = string(b)
	text := opts.Template
	if text == "" {
		text = DefaultConflist
	}
	t, err := template.New("conflist").Funcs(template.FuncMap{"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	}}).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("render conflist: %w", err)
	}
	var out bytes.Buffer
	if err := t.Execute(&out, d); err != nil {
		return nil, fmt.Errorf("render conflist: %w", err)
	}
	return out.Bytes(), nil
}

// pluginConf extracts the first plugin of a conflist as the network
// configuration a runtime passes on stdin (name and cniVersion added).
func pluginConf(conflist []byte) (string, []byte, error) {
	var list struct {
		CNIVersion string           `json:"cniVersion"`
		Name       string           `json:"name"`
		Plugins    []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(conflist, &list); err != nil {
		return "", nil, fmt.Errorf("parse conflist: %w", err)
	}
	if len(list.Plugins) == 0 {
		return "", nil, fmt.Errorf("parse conflist: no plugins")
	}
	p := list.Plugins[0]
	p["cniVersion"], p["name"] = list.CNIVersion, list.Name
	typ, _ := p["type"].(string)
	b, err := json.Marshal(p)
	return typ, b, err
}

// PodRequest describes a pod to create.
type PodRequest struct {
	Node, Namespace, Name string
	Annotations           map[string]string // e.g. gingham.dev/ipv4pools: ["pool"]
	CNI                   CNIOptions
}

// CreatePod does what a container runtime does for a new pod: the Pod
// object (nodeName set) in the API, a network namespace, then CNI ADD run
// inside the node's namespace; the pod's IP is recorded in its status.
// Pod names must be unique in the lab (they name the pod's namespace).
func (l *Lab) CreatePod(ctx context.Context, c client.Client, req PodRequest) (*Pod, error) {
	node, namespace, name, opts := req.Node, req.Namespace, req.Name, req.CNI
	obj := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: map[string]string{"app": "lab"}, Annotations: req.Annotations},
		Spec: corev1.PodSpec{NodeName: node,
			Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}},
	}
	if err := c.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create pod %s/%s: %w", namespace, name, err)
	}
	p := &Pod{Namespace: namespace, Name: name, Node: node, NetNS: l.NS("pod-" + name),
		ContainerID: fmt.Sprintf("%x", time.Now().UnixNano())}
	if err := AddNetNS(ctx, p.NetNS); err != nil {
		return nil, fmt.Errorf("create pod %s: %w", p, err)
	}
	res, err := l.CNI(ctx, "ADD", p, opts)
	if err != nil {
		return nil, fmt.Errorf("create pod %s: %w", p, err)
	}
	p.Result = res
	var r struct {
		IPs []struct {
			Address string `json:"address"`
		} `json:"ips"`
	}
	if err := json.Unmarshal(res, &r); err != nil || len(r.IPs) == 0 {
		return nil, fmt.Errorf("create pod %s: CNI result %s has no IP (%v)", p, res, err)
	}
	pfx, err := netip.ParsePrefix(r.IPs[0].Address)
	if err != nil {
		return nil, fmt.Errorf("create pod %s: CNI result address: %w", p, err)
	}
	p.IP = pfx.Addr()
	// The CNI plugin annotated the Pod meanwhile: patch, don't overwrite.
	status := map[string]any{"status": map[string]any{"podIP": p.IP.String(),
		"podIPs": []map[string]string{{"ip": p.IP.String()}}, "phase": string(corev1.PodRunning)}}
	patch, err := json.Marshal(status)
	if err != nil {
		return nil, fmt.Errorf("create pod %s: status: %w", p, err)
	}
	if err := c.Status().Patch(ctx, obj, client.RawPatch(k8stypes.MergePatchType, patch)); err != nil {
		return nil, fmt.Errorf("create pod %s: status: %w", p, err)
	}
	return p, nil
}

// DeletePod runs CNI DEL, deletes the pod's namespace and its object.
func (l *Lab) DeletePod(ctx context.Context, c client.Client, p *Pod, opts CNIOptions) error {
	if _, err := l.CNI(ctx, "DEL", p, opts); err != nil {
		return fmt.Errorf("delete pod %s: %w", p, err)
	}
	if err := DeleteNetNS(ctx, p.NetNS); err != nil {
		return fmt.Errorf("delete pod %s: %w", p, err)
	}
	obj := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name}}
	if err := c.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete pod %s: %w", p, err)
	}
	return nil
}

// CNI runs one CNI command for a pod inside its node's namespace, with the
// node's conflist (also written to NodeDir/<node>/cni.conflist), and
// returns the plugin's standard output.
func (l *Lab) CNI(ctx context.Context, command string, p *Pod, opts CNIOptions) (json.RawMessage, error) {
	list, err := l.Conflist(p.Node, opts)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(l.NodeDir(p.Node), 0o755); err != nil {
		return nil, fmt.Errorf("cni %s: %w", command, err)
	}
	if err := os.WriteFile(filepath.Join(l.NodeDir(p.Node), "cni.conflist"), list, 0o644); err != nil {
		return nil, fmt.Errorf("cni %s: %w", command, err)
	}
	typ, conf, err := pluginConf(list)
	if err != nil {
		return nil, err
	}
	paths := []string{BinDir(), "/usr/lib/cni", "/opt/cni/bin"}
	bin := ""
	for _, dir := range paths {
		if _, err := os.Stat(filepath.Join(dir, typ)); err == nil {
			bin = filepath.Join(dir, typ)
			break
		}
	}
	if bin == "" {
		return nil, fmt.Errorf("cni %s: plugin %q not found in %v", command, typ, paths)
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := Command(ctx, l.NS(p.Node), bin)
	cmd.Env = append(os.Environ(),
		"CNI_COMMAND="+command,
		"CNI_CONTAINERID="+p.ContainerID,
		"CNI_NETNS="+NetNSPath(p.NetNS),
		"CNI_IFNAME=eth0",
		"CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE="+p.Namespace+";K8S_POD_NAME="+p.Name+";K8S_POD_INFRA_CONTAINER_ID="+p.ContainerID,
		"CNI_PATH="+strings.Join(paths, ":"),
	)
	cmd.Stdin = bytes.NewReader(conf)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("cni %s %s for %s on %s: %w: %s %s", typ, command, p, p.Node, err,
			strings.TrimSpace(stdout.String()), strings.TrimSpace(stderr.String()))
	}
	return json.RawMessage(stdout.Bytes()), nil
}
