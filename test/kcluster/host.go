package kcluster

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gingham-net/gingham/test/labnet"
)

// HostState is what the cluster must leave as it found it on the host.
type HostState struct {
	Namespaces []string `json:"namespaces"` // network namespaces with the cluster's prefix
	Links      []string `json:"links"`      // host links (name only)
	Routes     []string `json:"routes"`     // host IPv4 routes, every table
	NFTables   []string `json:"nftables"`   // host nftables tables
	Mounts     []string `json:"mounts"`     // host mountpoints (of namespaces: the prefix's only)
	Cgroups    []string `json:"cgroups"`    // cgroup directories named with the prefix
	Sysctls    []string `json:"sysctls"`    // the sysctls a kubelet or kube-proxy would write
	Processes  []string `json:"processes"`  // processes in the cluster's namespaces or cgroups
}

// watchedSysctls are the host sysctls the cluster's components would write
// if they were not kept from it.
var watchedSysctls = []string{
	"vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops", "net/ipv4/ip_forward",
	"net/netfilter/nf_conntrack_max", "net/bridge/bridge-nf-call-iptables",
}

// Snapshot reads the host's state for prefix.
func Snapshot(ctx context.Context, prefix string) HostState {
	var s HostState
	s.Namespaces, _ = labnet.ListNetNS(prefix)
	for _, ns := range s.Namespaces {
		for _, pid := range labnet.NetNSPids(ctx, ns) {
			s.Processes = append(s.Processes, fmt.Sprintf("%d %s (in %s)", pid, labnet.Comm(pid), ns))
		}
	}
	if hier, err := cgroupHierarchies(); err == nil {
		for _, h := range hier {
			ents, _ := os.ReadDir(h)
			for _, e := range ents {
				if e.IsDir() && strings.HasPrefix(e.Name(), prefix) {
					dir := filepath.Join(h, e.Name())
					s.Cgroups = append(s.Cgroups, dir)
					if filepath.Base(h) == "pids" {
						for _, pid := range cgroupPIDs(dir) {
							s.Processes = append(s.Processes, fmt.Sprintf("%d %s (in cgroup %s)", pid, labnet.Comm(pid), dir))
						}
					}
				}
			}
		}
	}
	out, _ := labnet.Run(ctx, "", "ip", "-o", "link", "show")
	for _, l := range labnet.Lines(out) {
		if f := strings.Fields(l); len(f) > 1 {
			s.Links = append(s.Links, strings.TrimSuffix(strings.SplitN(f[1], "@", 2)[0], ":"))
		}
	}
	out, _ = labnet.Run(ctx, "", "ip", "-4", "route", "show", "table", "all")
	s.Routes = labnet.Lines(out)
	out, _ = labnet.Run(ctx, "", "nft", "list", "tables")
	s.NFTables = labnet.Lines(out)
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fl := strings.Fields(sc.Text())
			if len(fl) < 5 {
				continue
			}
			// Other runs' namespaces (tests in parallel) come and go.
			if ns, ok := strings.CutPrefix(fl[4], "/run/netns/"); ok && !strings.HasPrefix(ns, prefix) {
				continue
			}
			s.Mounts = append(s.Mounts, fl[4])
		}
		f.Close()
	}
	for _, k := range watchedSysctls {
		b, err := os.ReadFile("/proc/sys/" + k)
		v := strings.TrimSpace(string(b))
		if err != nil {
			v = "(absent)"
		}
		s.Sysctls = append(s.Sysctls, k+"="+v)
	}
	return s
}

// Diff lists what now has that base had not, and what base had that now
// lacks, as human-readable lines.
func (base HostState) Diff(now HostState) []string {
	var out []string
	cmp := func(what string, b, n []string) {
		for _, x := range n {
			if !slices.Contains(b, x) {
				out = append(out, "added "+what+": "+x)
			}
		}
		for _, x := range b {
			if !slices.Contains(n, x) {
				out = append(out, "missing "+what+": "+x)
			}
		}
	}
	cmp("namespace", base.Namespaces, now.Namespaces)
	cmp("link", base.Links, now.Links)
	cmp("route", base.Routes, now.Routes)
	cmp("nftables table", base.NFTables, now.NFTables)
	cmp("mount", base.Mounts, now.Mounts)
	cmp("cgroup", base.Cgroups, now.Cgroups)
	cmp("sysctl", base.Sysctls, now.Sysctls)
	cmp("process", base.Processes, now.Processes)
	return out
}

func cgroupPIDs(dir string) []int {
	var pids []int
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
			return nil
		}
		b, _ := os.ReadFile(p)
		for _, l := range labnet.Lines(string(b)) {
			var pid int
			if _, err := fmt.Sscan(l, &pid); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}
