package kcluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// State is what a cluster created on the host, recorded before each
// creation so Down (in another process) removes exactly that.
type State struct {
	Prefix   string         `json:"prefix"`
	Nodes    []string       `json:"nodes"`
	PIDs     map[string]int `json:"pids"`     // control-plane daemons and node supervisors by name
	HostDirs []string       `json:"hostDirs"` // mountpoint directories created on the host, parents first
	HostLink string         `json:"hostLink"` // the host end of the control-plane veth
	Cgroups  []string       `json:"cgroups"`  // per-node cgroup directories (every v1 hierarchy and cgroup2)
}

func statePath(runDir string) string { return filepath.Join(runDir, "state.json") }

// LoadState reads a cluster's state; a missing file is an empty state.
func LoadState(runDir string) (*State, error) {
	s := &State{PIDs: map[string]int{}}
	b, err := os.ReadFile(statePath(runDir))
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cluster state: %w", err)
	}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("cluster state %s: %w", statePath(runDir), err)
	}
	if s.PIDs == nil {
		s.PIDs = map[string]int{}
	}
	return s, nil
}

// Save writes the state atomically.
func (s *State) Save(runDir string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("cluster state: %w", err)
	}
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return fmt.Errorf("cluster state: %w", err)
	}
	tmp := statePath(runDir) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("cluster state: %w", err)
	}
	if err := os.Rename(tmp, statePath(runDir)); err != nil {
		return fmt.Errorf("cluster state: %w", err)
	}
	return nil
}
