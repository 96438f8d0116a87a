package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// SignalContext returns a context cancelled by the first SIGINT/SIGTERM (drain); a second
// signal exits the process at once with status 2.
func SignalContext(parent context.Context, log *slog.Logger) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case s := <-ch:
			log.Info("signal received: draining; send it again to stop at once", "signal", s.String())
			cancel()
		case <-ctx.Done():
			signal.Stop(ch)
			return
		}
		s := <-ch
		fmt.Fprintf(os.Stderr, "second %s: stopping now\n", s)
		os.Exit(2)
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}
