// Package logging builds the one zap logger a gingham binary uses and bridges
// the libraries that log on their own (klog, GoBGP's slog) into it. Libraries
// in this module never log unless handed a logger; the zero value they use is
// zap.NewNop().
package logging

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
	"go.uber.org/zap/zapcore"
	"k8s.io/klog/v2"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"
)

// Structured field keys shared across packages.
const (
	KeyNode   = "node"
	KeyPool   = "pool"
	KeyBlock  = "block"
	KeyHandle = "handle"
	KeyPeer   = "peer"
	KeyRoute  = "route"
	KeyIface  = "iface"
	KeyOp     = "op"
)

// ParseLevel turns a level name (debug, info, warn|warning, error) into a
// zap level; the error names the setting.
func ParseLevel(name string) (zapcore.Level, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "debug":
		return zapcore.DebugLevel, nil
	case "", "info":
		return zapcore.InfoLevel, nil
	case "warn", "warning":
		return zapcore.WarnLevel, nil
	case "error":
		return zapcore.ErrorLevel, nil
	}
	return 0, fmt.Errorf("log level %q: want debug, info, warning or error", name)
}

// New returns the process logger: JSON to stderr when json is set, console
// otherwise, at the given level.
func New(level zapcore.Level, json bool) *zap.Logger {
	cfg := zap.NewProductionConfig()
	if !json {
		cfg = zap.NewDevelopmentConfig()
		cfg.Development = false
		cfg.DisableStacktrace = true
	}
	cfg.Level = zap.NewAtomicLevelAt(level)
	cfg.Sampling = nil
	l, err := cfg.Build()
	if err != nil { // only on a broken sink configuration, which ours is not
		panic(fmt.Sprintf("build logger: %v", err))
	}
	return l
}

// Slog bridges a zap logger to slog, for libraries that take a *slog.Logger
// (GoBGP v4's LoggerOption).
func Slog(l *zap.Logger) *slog.Logger {
	return slog.New(zapslog.NewHandler(l.Core(), zapslog.WithName(l.Name())))
}

// ErrorField is the structured field of an error.
func ErrorField(err error) zap.Field { return zap.Error(err) }

// RouteLibraryLogs sends what client-go (klog) and controller-runtime log
// through l, so a binary has one log stream in one format.
func RouteLibraryLogs(l *zap.Logger) {
	lr := zapr.NewLogger(l)
	klog.SetLogger(lr)
	crlog.SetLogger(lr)
}
