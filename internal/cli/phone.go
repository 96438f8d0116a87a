package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/earshot-dev/earshot/gateway/twilio"
	"github.com/earshot-dev/earshot/internal/bus"
)

func init() {
	register(&command{
		name:    "phone",
		summary: "set up the Twilio phone bridge for a tenant: stream secrets and the transcript webhook",
		usage: `Subcommands:
  secret create --tenant T          a stream secret: point Twilio's <Stream url="wss://HOST/v1/twilio/SECRET">
  secret revoke SECRET              stop accepting calls with SECRET
  webhook set --tenant T URL KEY    POST call events to URL, signed with HMAC key KEY (X-Earshot-Signature)`,
		run: runPhone,
	})
	register(&command{
		name:    "phone-sim",
		summary: "play WAV files as a Twilio Media Streams call (caller, agent) against /v1/twilio",
		usage: `Plays CALLER.wav on the inbound track and AGENT.wav on the outbound track as G.711 µ-law
in 20 ms frames, in real time, with marks, a DTMF digit and stop, like Twilio does.`,
		run: runPhoneSim,
	})
}

func runPhone(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, commands["phone"], "<secret create|secret revoke|webhook set> [args]")
	tenant := fs.String("tenant", "", "tenant id")
	rurl := fs.String("redis", defaultRedis(e), redisFlagHelp)
	redactDefaults(fs, "redis")
	if len(args) < 2 {
		fs.Usage()
		return errUsage
	}
	sub := args[0] + " " + args[1]
	if err := parse(fs, interleave(args[2:])); err != nil {
		return err
	}
	rdb, err := redisFlag(e, rurl)
	if err != nil {
		return err
	}
	defer rdb.Close()
	switch sub {
	case "secret create":
		if *tenant == "" {
			return fmt.Errorf("--tenant is required")
		}
		s, err := twilio.NewSecretStore(rdb).CreateSecret(ctx, bus.TenantID(*tenant))
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "stream secret: %s\nTwiML: <Connect><Stream url=\"wss://YOUR-HOST/v1/twilio/%s\"/></Connect>\n", s, s)
		return nil
	case "secret revoke":
		if fs.NArg() != 1 {
			return fmt.Errorf("usage: earshot phone secret revoke SECRET")
		}
		return twilio.NewSecretStore(rdb).Revoke(ctx, fs.Arg(0))
	case "webhook set":
		if *tenant == "" || fs.NArg() != 2 {
			return fmt.Errorf("usage: earshot phone webhook set --tenant T URL KEY")
		}
		return twilio.NewRedisWebhooks(rdb).Set(ctx, bus.TenantID(*tenant), fs.Arg(0), fs.Arg(1))
	}
	return fmt.Errorf("unknown subcommand %q: use secret create, secret revoke or webhook set", sub)
}

func runPhoneSim(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, commands["phone-sim"], "CALLER.wav [AGENT.wav] --url ws://HOST/v1/twilio/SECRET")
	url := fs.String("url", "ws://localhost:8080/v1/twilio", "the bridge's WebSocket URL, with the stream secret")
	speed := fs.Float64("speed", 1, "play this many times faster than real time")
	overlap := fs.Bool("overlap", false, "both sides speak at once (default: the agent answers after the caller)")
	dtmf := fs.String("dtmf", "1", "a DTMF digit to send mid-call (empty: none)")
	if err := parse(fs, interleave(args)); err != nil {
		return err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return fmt.Errorf("usage: earshot phone-sim CALLER.wav [AGENT.wav] --url ws://HOST/v1/twilio/SECRET")
	}
	agent := ""
	if fs.NArg() == 2 {
		agent = fs.Arg(1)
	}
	if !strings.HasPrefix(*url, "ws://") && !strings.HasPrefix(*url, "wss://") {
		return fmt.Errorf("--url %q must be a ws:// or wss:// URL", *url)
	}
	if err := twilio.Simulate(ctx, *url, fs.Arg(0), agent, twilio.SimOptions{Speed: *speed, Overlap: *overlap, DTMF: *dtmf}); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "call played and stopped")
	return nil
}
