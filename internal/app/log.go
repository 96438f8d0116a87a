package app

import (
	"io"
	"log/slog"

	"github.com/earshot-dev/earshot/internal/config"
)

// NewLogger builds the process logger from the common settings.
func NewLogger(c config.Common, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
