package images

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
)

// Refs are the references the e2e-side images are tagged with.
type Refs struct {
	Pause, Busybox, Agnhost []string
}

// e2eManifest is the e2e suite's image list, in the k8s.io/kubernetes source.
const e2eManifest = "test/utils/image/manifest.go"

var (
	registryLine = regexp.MustCompile(`(?m)^\s*(\w+Registry):\s*"([^"]+)",`)
	configLine   = regexp.MustCompile(`configs\[(\w+)\]\s*=\s*Config\{list\.(\w+),\s*"([^"]+)",\s*"([^"]+)"\}`)
)

// E2ERefs reads the references of pause, busybox and agnhost from the e2e
// image manifest of the Kubernetes source in k8sDir, so the tags follow the
// k8s.io/kubernetes version hack/tools pins. Images on the manifest's private
// and invalid registries (meant to fail to pull) are left out. A few tags
// the manifest does not list are added: pause 3.10 and 3.10.1 (sandbox
// images of older node configurations), busybox on docker.io with the e2e
// tag and latest, and busybox 1.36.1-1 (test/e2e/testing-manifests).
func E2ERefs(k8sDir string) (Refs, error) {
	p := filepath.Join(k8sDir, e2eManifest)
	src, err := os.ReadFile(p)
	if err != nil {
		return Refs{}, fmt.Errorf("read e2e image manifest: %w", err)
	}
	registries := map[string]string{}
	for _, m := range registryLine.FindAllStringSubmatch(string(src), -1) {
		registries[m[1]] = m[2]
	}
	byName := map[string][]string{}
	var busyboxTags []string
	for _, m := range configLine.FindAllStringSubmatch(string(src), -1) {
		registry, name, tag := m[2], m[3], m[4]
		if registry == "PrivateRegistry" || registry == "InvalidRegistry" {
			continue
		}
		host, ok := registries[registry]
		if !ok {
			return Refs{}, fmt.Errorf("e2e image manifest %s: %s uses unknown registry %s", p, m[1], registry)
		}
		byName[name] = append(byName[name], host+"/"+name+":"+tag)
		if name == "busybox" {
			busyboxTags = append(busyboxTags, tag)
		}
	}
	r := Refs{Pause: byName["pause"], Busybox: byName["busybox"], Agnhost: byName["agnhost"]}
	if len(r.Pause) == 0 || len(r.Busybox) == 0 || len(r.Agnhost) == 0 {
		return Refs{}, fmt.Errorf("e2e image manifest %s: want pause, busybox and agnhost, found %v", p, r)
	}
	r.Pause = append(r.Pause, "registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10.1")
	for _, tag := range busyboxTags {
		r.Busybox = append(r.Busybox, "docker.io/library/busybox:"+tag)
	}
	r.Busybox = append(r.Busybox, "docker.io/library/busybox:latest", "registry.k8s.io/e2e-test-images/busybox:1.36.1-1")
	for _, refs := range []*[]string{&r.Pause, &r.Busybox, &r.Agnhost} {
		*refs = dedupe(*refs)
	}
	return r, nil
}

func dedupe(refs []string) []string {
	var out []string
	for _, r := range refs {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// KubernetesSource returns the directory of the k8s.io/kubernetes module
// the tools module at toolsDir (hack/tools) requires, downloading it into
// the module cache if needed.
func KubernetesSource(ctx context.Context, toolsDir string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", "k8s.io/kubernetes")
	cmd.Dir = toolsDir
	out, err := cmd.Output()
	var mod struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &mod); jerr != nil {
		return "", fmt.Errorf("download k8s.io/kubernetes (in %s): %w", toolsDir, errors.Join(err, jerr))
	}
	if mod.Error != "" || mod.Dir == "" {
		return "", fmt.Errorf("download k8s.io/kubernetes (in %s): %q", toolsDir, mod.Error)
	}
	if err != nil {
		return "", fmt.Errorf("download k8s.io/kubernetes (in %s): %w", toolsDir, err)
	}
	return mod.Dir, nil
}
