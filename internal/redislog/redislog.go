// Package redislog routes go-redis's own log lines (for example "connection pool:
// failed to dial after 5 attempts", printed to stderr on every retry while Redis is
// down) into slog at debug level. The errors themselves reach the callers, which log
// them with context and say what to do; the library's duplicates only flood stderr.
package redislog

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

type logger struct{ log *slog.Logger }

func (l logger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, fmt.Sprintf(format, v...), "component", "go-redis")
}

// Route sends go-redis's log lines to log at debug level (nil: discard them). It sets
// a process-wide logger of the go-redis package.
func Route(log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	redis.SetLogger(logger{log})
}
