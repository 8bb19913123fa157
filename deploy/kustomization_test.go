package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestKustomizationListsEveryManifest: `kubectl apply -k deploy/` must
// install what the files of deploy/ are (every manifest and CRD but the
// examples), so a new manifest cannot be left out of the base.
func TestKustomizationListsEveryManifest(t *testing.T) {
	b, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(b, &k); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, pattern := range []string{"*.yaml", "crds/*.yaml"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range m {
			if f != "kustomization.yaml" {
				want = append(want, f)
			}
		}
	}
	got := slices.Clone(k.Resources)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("kustomization.yaml resources %v, want every manifest of deploy/ %v", got, want)
	}
}
