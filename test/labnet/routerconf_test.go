package labnet

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestRouterConfigs compares the rendered FRR and BIRD configurations of
// the lab's topologies (the ones docs/peering.md explains) with golden
// files.
func TestRouterConfigs(t *testing.T) {
	tor := ToRSpec("x-", "/run/x", 2)
	rr := RRSpec("x-", "/run/x", 2)
	tests := []struct {
		name string
		got  string
	}{
		{"tor1-frr.conf", FRRConfig(tor.Routers[1])},
		{"spine-bird.conf", BIRDConfig(tor.Routers[0])},
		{"rr-bird.conf", BIRDConfig(rr.Routers[0])},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join("testdata", t.Name()+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(tt.got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), tt.got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tt.name, diff)
			}
		})
	}
}

// TestDiagram checks that the diagram names every router, node and pod.
func TestDiagram(t *testing.T) {
	spec := ToRSpec("x-", "/run/x", 2)
	d := Diagram(spec, []*Pod{{Name: "rack2-node2-a", Node: "rack2-node2"}})
	for _, want := range []string{"spine  BIRD  AS 65000", "tor1  FRR  AS 65001", "tor2  FRR  AS 65002",
		"rack1-node1", "10.0.2.12/24  AS 65022", "pod rack2-node2-a", "10.0.0.3/31"} {
		if !strings.Contains(d, want) {
			t.Errorf("diagram lacks %q:\n%s", want, d)
		}
	}
}
