package redislog

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// A client dialling a closed port makes go-redis log its pool errors: they must land
// in the routed slog logger at debug level, not on stderr.
func TestRouteCapturesPoolErrors(t *testing.T) {
	var buf bytes.Buffer
	Route(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer Route(nil)
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: 0, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := 0; i < 10 && !strings.Contains(buf.String(), "go-redis"); i++ {
		if c.Ping(ctx).Err() == nil {
			t.Fatal("ping of a closed port succeeded")
		}
	}
	if !strings.Contains(buf.String(), "level=DEBUG") || !strings.Contains(buf.String(), "component=go-redis") {
		t.Fatalf("go-redis did not log through the routed logger: %q", buf.String())
	}
}
