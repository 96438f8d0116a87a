package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/earshot-dev/earshot/gateway/client"
)

func init() {
	register(&command{
		name:    "stream",
		summary: "stream a WAV file (or raw audio on stdin) to a gateway and show live partials and finals",
		usage: `Streams in real time like a microphone (--fast: as fast as the server allows). WAV files carry
their own format; for raw audio on stdin ("-") give --encoding and --sample-rate.
Credentials: --key (an API key) or --token; against 'earshot serve --demo' neither is needed:
a demo token is fetched from /demo/grant.`,
		run: runStream,
	})
}

func runStream(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, commands["stream"], "FILE|- [flags]")
	url := fs.String("url", "ws://localhost:8080/v1/listen", "gateway WebSocket URL")
	key := fs.String("key", "", "API key (or env EARSHOT_API_KEY)")
	token := fs.String("token", "", "short-lived token from POST /v1/auth/grant")
	model := fs.String("model", "", "model (default: the server's)")
	language := fs.String("language", "", "language= (BCP-47: en, zh-CN, zh-TW, …; multi: detect each utterance's)")
	enc := fs.String("encoding", "", "raw audio: linear16, linear32, mulaw or alaw")
	rate := fs.Int("sample-rate", 0, "raw audio: sample rate in Hz")
	channels := fs.Int("channels", 0, "raw audio: channels")
	fast := fs.Bool("fast", false, "send as fast as the server accepts instead of in real time")
	asJSON := fs.Bool("json", false, "print every server message as JSON (one per line)")
	interim := fs.Bool("interim", true, "ask for partial results")
	chunk := fs.Int("chunk-ms", 100, "audio per WebSocket frame")
	if err := parse(fs, interleave(args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: earshot stream FILE|- [--url ws://host:8080/v1/listen]")
	}
	if *key == "" {
		for _, kv := range e.environ {
			if v, ok := strings.CutPrefix(kv, "EARSHOT_API_KEY="); ok {
				*key = v
			}
		}
	}
	if *key == "" && *token == "" {
		t, err := demoToken(ctx, *url)
		if err != nil {
			return fmt.Errorf("no --key or --token, and no demo token: %w", err)
		}
		*token = t
	}
	o := client.Options{Key: *key, Token: *token, Model: *model, Language: *language, Encoding: *enc, SampleRate: *rate,
		Channels: *channels, InterimResults: *interim, VADEvents: true}
	return client.StreamFile(ctx, *url, o, fs.Arg(0), client.FileOptions{Realtime: !*fast, JSON: *asJSON, ChunkMs: *chunk}, e.stdout)
}

// demoToken asks a gateway in demo mode for a token (POST /demo/grant).
func demoToken(ctx context.Context, wsURL string) (string, error) {
	base := strings.Replace(strings.Replace(wsURL, "wss://", "https://", 1), "ws://", "http://", 1)
	if i := strings.Index(base, "/v1/"); i >= 0 {
		base = base[:i]
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/demo/grant", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s/demo/grant: HTTP %d (is the server started with --demo?)", base, resp.StatusCode)
	}
	var g struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&g); err != nil || g.AccessToken == "" {
		return "", fmt.Errorf("%s/demo/grant: no access_token in the reply", base)
	}
	return g.AccessToken, nil
}
