package attach_test

// Benchmark B7 (docs/benchmarks.md): CNI ADD/DEL latency of the gingham
// plugin vs the reference ptp plugin, both with host-local IPAM, sequential
// and 20 in parallel, in a throwaway host netns. Run as root:
//   go test -run '^$' -bench B7 -benchtime 1x ./cni/attach/ [-args -b7.bin $PWD/bin/gingham]
// Without -b7.bin the test binary itself acts as the gingham plugin (larger
// than bin/gingham: testing and more are linked in); make bench
// (test/benchsuite) passes the real binary from make build.

import (
	"flag"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gingham-net/gingham/cni/attach/attachtest"
	"github.com/gingham-net/gingham/internal/netns"
	"github.com/gingham-net/gingham/internal/netns/netnstest"
)

var (
	b7Bin  = flag.String("b7.bin", "", "BenchmarkB7: the gingham plugin binary (default: this test binary)")
	b7Pods = flag.Int("b7.pods", 40, "BenchmarkB7: pods per phase")
)

func BenchmarkB7(b *testing.B) {
	for _, plugin := range []string{"gingham", "ptp"} {
		for _, par := range []int{1, 20} {
			b.Run(fmt.Sprintf("%s/parallel=%d", plugin, par), func(b *testing.B) {
				netnstest.Privileged(b)
				host := netnstest.New(b, "h")
				dir := b.TempDir()
				conf := []byte(fmt.Sprintf(`{"cniVersion":"1.0.0","name":"bench","type":%q,"mtu":1500,"stateDir":%q,
					"ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":"10.244.0.0/22"}]]}}`, plugin, dir, filepath.Join(dir, "ipam")))
				r := attachtest.Self(host)
				if plugin == "gingham" && *b7Bin != "" {
					r = attachtest.Runner{Bin: *b7Bin, Host: host}
				}
				if plugin != "gingham" {
					r = attachtest.Reference(host, plugin)
				}
				pods := make([]*netns.NS, *b7Pods)
				for i := range pods {
					pods[i] = netnstest.New(b, "p")
				}
				var mu sync.Mutex
				var adds, dels []time.Duration
				b.ResetTimer()
				for range b.N {
					do := func(cmd string, i int, into *[]time.Duration) {
						t0 := time.Now()
						_, err := r.Run(attachtest.Call{Command: cmd, ContainerID: fmt.Sprintf("c%d", i), Netns: pods[i].Path(), IfName: "eth0",
							Args: attachtest.PodArgs("bench", fmt.Sprintf("pod%d", i)), Conf: conf})
						d := time.Since(t0)
						if err != nil {
							b.Error(err)
						}
						mu.Lock()
						*into = append(*into, d)
						mu.Unlock()
					}
					for _, phase := range []struct {
						cmd  string
						into *[]time.Duration
					}{{"ADD", &adds}, {"DEL", &dels}} {
						sem := make(chan struct{}, par)
						var wg sync.WaitGroup
						for i := range pods {
							sem <- struct{}{}
							wg.Add(1)
							go func() { defer wg.Done(); defer func() { <-sem }(); do(phase.cmd, i, phase.into) }()
						}
						wg.Wait()
					}
				}
				b.StopTimer()
				q := func(ds []time.Duration, p float64) float64 {
					s := slices.Clone(ds)
					slices.Sort(s)
					return float64(s[int(p*float64(len(s)-1))].Microseconds()) / 1000
				}
				b.ReportMetric(q(adds, 0.5), "add-p50-ms")
				b.ReportMetric(q(adds, 0.99), "add-p99-ms")
				b.ReportMetric(q(dels, 0.5), "del-p50-ms")
				b.ReportMetric(q(dels, 0.99), "del-p99-ms")
			})
		}
	}
}
