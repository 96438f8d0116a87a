package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/earshot-dev/earshot/ingest"
	"github.com/earshot-dev/earshot/models"
	"github.com/earshot-dev/earshot/transcriber"
)

func init() {
	register(&command{
		name:    "transcribe",
		summary: "transcribe a WAV file offline (whole file, no server) and print the text",
		usage: `Reads a WAV file at any rate from 8 to 48 kHz (16-bit, 24-bit, 32-bit, float, µ-law or A-law),
resamples it to 16 kHz mono and decodes it with whisper. --json prints segments with word timestamps.`,
		run: runTranscribe,
	})
}

func runTranscribe(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, commands["transcribe"], "FILE [flags]")
	model := fs.String("model", models.Default, "model name (see earshot models list) or a ggml file path")
	dir := fs.String("model-dir", models.DefaultDir(), "directory holding ggml model files (env EARSHOT_MODEL_DIR)")
	asJSON := fs.Bool("json", false, "print JSON: text, segments and words with start/end seconds")
	threads := fs.Int("threads", runtime.NumCPU(), "decode threads")
	lang := fs.String("language", "en", "spoken language (multilingual models)")
	verbose := fs.Bool("v", false, "log model loading and timing to stderr")
	if err := parse(fs, interleave(args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: earshot transcribe FILE [--model NAME] [--json]")
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	format, chans, err := ingest.ReadWAV(f)
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	samples := ingest.Convert16kMono(format, chans)
	path, err := models.Resolve(*dir, *model)
	if err != nil {
		return err
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	m, err := transcriber.LoadWhisper(path, transcriber.LoadOptions{Name: *model, Threads: *threads, Log: log})
	if err != nil {
		return err
	}
	defer m.Close()
	start := time.Now()
	tr, err := transcriber.Transcribe(ctx, m, samples, transcriber.OfflineOptions{Threads: *threads, Language: *lang})
	if err != nil {
		return err
	}
	log.Info("transcribed", "audio_s", tr.Duration, "elapsed", time.Since(start), "rtf", time.Since(start).Seconds()/max(tr.Duration, 1e-9))
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(tr)
	}
	fmt.Fprintln(e.stdout, tr.Text)
	return nil
}
