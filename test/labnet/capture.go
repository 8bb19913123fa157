package labnet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Capture is a running tcpdump writing a pcap file.
type Capture struct {
	File string
	d    *Daemon
}

// StartCapture runs tcpdump on dev inside namespace ns with a BPF filter,
// writing packets to RunDir/captures/<name>.pcap. It returns once tcpdump
// is listening.
func (l *Lab) StartCapture(ctx context.Context, name, ns, dev, filter string) (*Capture, error) {
	dir := filepath.Join(l.Spec.RunDir, "captures")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("capture %s: %w", name, err)
	}
	c := &Capture{File: filepath.Join(dir, name+".pcap")}
	logPath := filepath.Join(dir, name+".log")
	args := []string{"tcpdump", "-n", "-U", "--immediate-mode", "-Z", "root", "-i", dev, "-w", c.File} // -Z root: Debian drops to user tcpdump, which cannot write the run dir
	if filter != "" {
		args = append(args, filter)
	}
	d, err := StartDaemon("capture/"+name, l.NS(ns), logPath, nil, args...)
	if err != nil {
		return nil, err
	}
	c.d = d
	// tcpdump announces "listening on" once the socket is bound.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if b, _ := os.ReadFile(logPath); len(b) > 0 {
			return c, nil
		}
		select {
		case <-ctx.Done():
			_ = d.Stop(time.Second)
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	_ = d.Stop(time.Second)
	return nil, fmt.Errorf("capture %s: tcpdump did not start (log %s)", name, logPath)
}

// Stop ends the capture and returns the packets as tcpdump prints them.
func (c *Capture) Stop(ctx context.Context) (string, error) {
	_ = c.d.Signal(syscall.SIGINT)
	if err := c.d.Stop(2 * time.Second); err != nil {
		return "", err
	}
	return Run(ctx, "", "tcpdump", "-n", "-r", c.File)
}
