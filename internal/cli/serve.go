package cli

import (
	"context"
	"fmt"
	"runtime"

	"github.com/earshot-dev/earshot/internal/app"
	"github.com/earshot-dev/earshot/internal/config"
	"github.com/earshot-dev/earshot/models"
)

func init() {
	for _, c := range []struct {
		name, summary, usage string
		parts                app.Parts
	}{
		{"serve", "run everything in one process: embedded NATS (JetStream on disk), gateway, one transcriber, billing",
			"Without --nats, NATS runs inside the process with JetStream under $EARSHOT_DATA_DIR/nats.\nRedis is required (--redis); `make run` starts a private one.",
			app.Parts{Gateway: true, Transcriber: true, Billing: true, Embedded: true}},
		{"gateway", "run the WebSocket/HTTP gateway alone against an external NATS and Redis",
			"Serves /v1/listen, /v1/auth/grant, /v1/models, /v1/usage, the demo page, /healthz, /readyz on --listen;\n/metrics and the detailed /readyz on --ops-listen (loopback by default).",
			app.Parts{Gateway: true}},
		{"transcriber", "run a transcriber worker alone against an external NATS",
			"Loads --models once, serves live sessions from NATS with --slots concurrent decodes.\n/healthz, /readyz and /metrics are served on --ops-listen (loopback by default).",
			app.Parts{Transcriber: true}},
		{"billing", "run the billing consumer alone against an external NATS and Redis",
			"Applies usage events from the USAGE JetStream stream to Redis exactly once.\n`earshot billing report --tenant T --month YYYY-MM [--csv]` prints an invoice.\n/healthz, /readyz and /metrics are served on --ops-listen (loopback by default).",
			app.Parts{Billing: true}},
	} {
		c := c
		register(&command{name: c.name, summary: c.summary, usage: c.usage,
			run: func(ctx context.Context, e *env, args []string) error {
				if c.name == "billing" && len(args) > 0 && args[0] == "report" {
					return runBillingReport(ctx, e, args[1:])
				}
				return runService(ctx, e, c.name, c.parts, args)
			}})
	}
}

func runService(ctx context.Context, e *env, name string, parts app.Parts, args []string) error {
	fs := newFlags(e, commands[name], "[flags]")
	common, gw, tr := config.Defaults()
	common.ModelDir = models.DefaultDir()
	known := config.EnvNames(&common)
	if err := config.Bind(fs, &common, e.environ); err != nil {
		return err
	}
	if parts.Gateway {
		if err := config.Bind(fs, &gw, e.environ); err != nil {
			return err
		}
		known = append(known, config.EnvNames(&gw)...)
	}
	if parts.Transcriber {
		if err := config.Bind(fs, &tr, e.environ); err != nil {
			return err
		}
		known = append(known, config.EnvNames(&tr)...)
	}
	if !parts.Gateway && parts.Transcriber {
		// A transcriber alone still honours the synthetic-model guard.
		fs.BoolVar(&gw.AllowSynthetic, "allow-synthetic-models", false, "load models with random weights (benchmarks only)")
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see earshot %s --help)", fs.Arg(0), name)
	}
	// Every EARSHOT_* a service could use is known, even where this part ignores it.
	c0, g0, t0 := config.Defaults()
	known = append(append(append(known, config.EnvNames(&c0)...), config.EnvNames(&g0)...), config.EnvNames(&t0)...)
	// Variables of the scripts, tests and clients that share the prefix.
	known = append(known, "EARSHOT_BIN", "EARSHOT_CACHE", "EARSHOT_TESTDATA", "EARSHOT_MODEL", "EARSHOT_WER_REPORT",
		"EARSHOT_BENCH_PHONE", "EARSHOT_BENCH_CTX", "EARSHOT_BENCH_SERVE_LOG", "EARSHOT_CHAOS", "EARSHOT_ABUSE", "EARSHOT_ABUSE_REPORT", "EARSHOT_CHAOS_REPORT", "EARSHOT_CHAOS_ONLY", "EARSHOT_API_KEY", "EARSHOT_PLANS",
		// Read by whisper.cpp itself (patch 0010): 0 keeps q8_0 weights as stored, for comparisons.
		"EARSHOT_Q8_REPACK",
		// Read by transcriber/whispercpp: the decoder passes run on one thread (patch 0013), for comparisons.
		"EARSHOT_ONE_THREAD_ROWS",
		// Read by the transcriber: drafts across Chinese scripts (whisper patch 0014), for comparisons.
		"EARSHOT_DRAFT_CLASSES")
	if err := config.CheckEnv(e.environ, known); err != nil {
		return err
	}
	if err := common.Validate(!parts.Embedded); err != nil {
		return err
	}
	if parts.Gateway {
		if err := gw.Validate(); err != nil {
			return err
		}
	}
	if parts.Transcriber {
		if err := tr.Validate(runtime.NumCPU()); err != nil {
			return err
		}
	}
	log := app.NewLogger(common, e.stderr)
	ctx, stop := app.SignalContext(ctx, log)
	defer stop()
	return app.Run(ctx, app.Options{
		Parts: parts, Common: common, Gateway: gw, Transcriber: tr, Log: log,
		Ready: func(url string) {
			if parts.Gateway {
				fmt.Fprintf(e.stdout, "Earshot is up: open %s/ in a browser (API: %s/v1/listen)\n", url, url)
			}
		},
	})
}
