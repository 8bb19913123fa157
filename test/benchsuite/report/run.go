package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Run describes one run of make bench: the header of the report. begin
// creates it, every step adds itself, end closes it.
type Run struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	Command  string    `json:"command"`
	Machine  Machine   `json:"machine"`
	Go       string    `json:"go"`
	Commit   string    `json:"commit"`
	// Versions of the reference daemons and tools, e.g. "BIRD": "2.0.12".
	Versions map[string]string `json:"versions,omitempty"`
	// LoadStart and LoadEnd are /proc/loadavg's 1, 5 and 15 minute figures.
	LoadStart [3]float64 `json:"loadStart"`
	LoadEnd   [3]float64 `json:"loadEnd"`
	// BusyStart and BusyEnd are the CPU-seconds all CPUs had spent busy
	// since boot (/proc/stat: user, nice, system, irq, softirq).
	BusyStart float64 `json:"busyStart"`
	BusyEnd   float64 `json:"busyEnd"`
	// StealStart and StealEnd are the CPU-seconds the hypervisor took.
	StealStart float64 `json:"stealStart,omitempty"`
	StealEnd   float64 `json:"stealEnd,omitempty"`
	Steps      []Step  `json:"steps,omitempty"`
}

// Machine is what the figures were measured on.
type Machine struct {
	NProc  int     `json:"nproc"`
	CPU    string  `json:"cpu"`
	MemGiB float64 `json:"memGiB"`
	Kernel string  `json:"kernel"`
}

// Step is one part of the run (micro, dataplane, bgp).
type Step struct {
	Name     string    `json:"name"`
	Command  string    `json:"command"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// CPUSeconds is user+system time of the step's process and every
	// descendant it waited for (daemons that detach are not included).
	CPUSeconds float64 `json:"cpuSeconds"`
	LoadMax    float64 `json:"loadMax"` // highest 1-minute load average sampled
	ExitCode   int     `json:"exitCode"`
}

// Wall is the step's run time.
func (s Step) Wall() time.Duration { return s.Finished.Sub(s.Started) }

// RunFile is where a results directory keeps its Run (in a subdirectory,
// so that result.ReadDir does not take it for a result file).
func RunFile(dir string) string { return filepath.Join(dir, "run", "run.json") }

// ReadRun reads the Run of a results directory.
func ReadRun(dir string) (*Run, error) {
	b, err := os.ReadFile(RunFile(dir))
	if err != nil {
		return nil, fmt.Errorf("read run: %w", err)
	}
	r := &Run{}
	if err := json.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("read run %s: %w", RunFile(dir), err)
	}
	return r, nil
}

// WriteRun stores r in dir.
func WriteRun(dir string, r *Run) error {
	if err := os.MkdirAll(filepath.Dir(RunFile(dir)), 0o755); err != nil {
		return fmt.Errorf("write run: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("write run: %w", err)
	}
	return os.WriteFile(RunFile(dir), append(b, '\n'), 0o644)
}
