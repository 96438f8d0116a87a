package whispercpp

/*
#cgo LDFLAGS: -lwhisper -lggml -lggml-cpu -lggml-base -lstdc++ -lm -fopenmp
#include <stdlib.h>
#include "bridge.h"
*/
import "C"

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
)

// ggml log levels (ggml.h enum ggml_log_level).
const (
	logDebug = 1
	logInfo  = 2
	logWarn  = 3
	logError = 4
	logNone  = 100 // above every level: drop everything
)

var logger atomic.Pointer[slog.Logger]

func init() {
	// whisper.cpp and ggml print to stderr until a callback is installed; drop
	// everything until SetLogger asks for it.
	C.earshot_log_install(C.int(logNone))
}

// SetLogger routes whisper.cpp and ggml log lines to l: errors at slog Warn,
// everything else at slog Debug (ggml's own debug lines are never forwarded).
// A nil l (the default) drops them all in C. The log callback is process-wide:
// the last call wins. Safe for concurrent use; whisper may log from any thread.
func SetLogger(l *slog.Logger) {
	min := logNone
	if l != nil {
		min = logError
		if l.Enabled(context.Background(), slog.LevelDebug) {
			min = logInfo
		}
	}
	logger.Store(l)
	C.earshot_log_install(C.int(min))
}

//export earshotGoLog
func earshotGoLog(level C.int, text *C.char) {
	l := logger.Load()
	if l == nil {
		return
	}
	msg := strings.TrimSpace(C.GoString(text))
	if msg == "" {
		return
	}
	lvl := slog.LevelDebug
	if level >= logError {
		lvl = slog.LevelWarn
	}
	l.Log(context.Background(), lvl, msg, "component", "whisper.cpp")
}

// SystemInfo is whisper_print_system_info: the CPU features and backends the
// library was built with.
func SystemInfo() string {
	return strings.TrimSpace(C.GoString(C.whisper_print_system_info()))
}

// Version is whisper_version, the whisper.cpp release the package links.
func Version() string {
	return C.GoString(C.whisper_version())
}
