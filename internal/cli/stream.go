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
a demo token is fetched from /demo/grant.
--turns streams to /v2/listen (turn-taking, Deepgram Flux's protocol) and prints each turn
event with the second it arrived, the turn's audio window, its end-of-turn confidence and,
on EndOfTurn, why the turn ended and how long after its audio the event came; tune it with
--eot-threshold, --eager-eot-threshold and --eot-timeout-ms (--language is then the
language_hint).
A dropped connection is resumed (--reconnect=false: not): the audio since the last final, or
with --turns the last EndOfTurn, is sent again, billed once; the output goes on where it was.`,
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
	reconnect := fs.Bool("reconnect", true, "resume a dropped connection (1011/1012/1013 or lost), resending the audio since the last final (--turns: EndOfTurn)")
	turns := fs.Bool("turns", false, "turn-taking: stream to /v2/listen and print turn events")
	eot := fs.Float64("eot-threshold", 0, "--turns: end-of-turn confidence that ends a turn, 0.5–1.0 (default: the server's 0.7)")
	eager := fs.Float64("eager-eot-threshold", 0, "--turns: confidence for EagerEndOfTurn, 0.3–0.9 (default: off)")
	eotTimeout := fs.Int("eot-timeout-ms", 0, "--turns: silence that ends a turn whatever the confidence, 500–60000 ms (default: the server's 5000)")
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
	if !*turns && (*eot != 0 || *eager != 0 || *eotTimeout != 0) {
		return fmt.Errorf("--eot-threshold, --eager-eot-threshold and --eot-timeout-ms need --turns")
	}
	if *turns && (*channels > 1 || !*interim) {
		return fmt.Errorf("--turns streams are mono and always get Update events: drop --channels and --interim")
	}
	if *key == "" && *token == "" {
		t, err := demoToken(ctx, *url)
		if err != nil {
			return fmt.Errorf("no --key or --token, and no demo token: %w", err)
		}
		*token = t
	}
	fo := client.FileOptions{Realtime: !*fast, JSON: *asJSON, ChunkMs: *chunk}
	if *turns {
		to := client.TurnOptions{Key: *key, Token: *token, Model: *model, LanguageHint: *language, Encoding: *enc,
			SampleRate: *rate, EOTThreshold: *eot, EagerEOTThreshold: *eager, EOTTimeoutMs: *eotTimeout, Reconnect: *reconnect}
		return client.StreamTurnsFile(ctx, *url, to, fs.Arg(0), fo, e.stdout)
	}
	o := client.Options{Key: *key, Token: *token, Model: *model, Language: *language, Encoding: *enc, SampleRate: *rate,
		Channels: *channels, InterimResults: *interim, VADEvents: true, Reconnect: *reconnect}
	return client.StreamFile(ctx, *url, o, fs.Arg(0), fo, e.stdout)
}

// demoToken asks a gateway in demo mode for a token (POST /demo/grant).
func demoToken(ctx context.Context, wsURL string) (string, error) {
	base := strings.Replace(strings.Replace(wsURL, "wss://", "https://", 1), "ws://", "http://", 1)
	for _, p := range []string{"/v1/", "/v2/"} {
		if i := strings.Index(base, p); i >= 0 {
			base = base[:i]
		}
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
