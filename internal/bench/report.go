package bench

import (
	"encoding/json"
	"fmt"
	"github.com/earshot-dev/earshot/internal/wer"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// WriteFiles writes bench.json, bench.md, latency.svg and cpu.svg into dir.
func WriteFiles(dir string, r *Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"bench.json":  append(b, '\n'),
		"latency.svg": []byte(LatencySVG(r)),
		"cpu.svg":     []byte(CPUSVG(r)),
	}
	var md strings.Builder
	WriteMarkdown(&md, r)
	files["bench.md"] = []byte(md.String())
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// WriteMarkdown renders the sweep as a Markdown table with the definitions under it.
func WriteMarkdown(w io.Writer, r *Report) {
	fmt.Fprintf(w, "Target %s, %s UTC; %d clips looped, %.0f s of audio per stream per level; knee rule: partial p95 > %.0f ms, final p95 > %.0f ms, a stream behind real time by more than %.0f ms, or any error. Every stream sends the same clips (each from its own start), so levels score the same audio.\n\n",
		r.Target, r.Started.Format("2006-01-02 15:04"), r.Clips, r.Duration, r.KneeP95Ms, r.KneeFinalMs, r.KneeFinalMs)
	if r.Language != "" {
		fmt.Fprintf(w, "Language: %s (error rate: %s).\n\n", r.Language, errorRateName(r.Language))
	}
	if r.EndpointingMs != 0 {
		fmt.Fprintf(w, "Endpointing: %d ms (endpointing= on every stream; the server's default otherwise).\n\n", r.EndpointingMs)
	}
	if r.FinalFrom != FinalFromSpeechEnd {
		fmt.Fprintf(w, "Final latency from: %s (the clips' speech was not measured: no Silero model; `make model` installs it, --vad names it), not from the speech end.\n\n", r.FinalFrom)
	}
	fmt.Fprintln(w, "| streams | partial p50 / p95 / p99 ms | word p50 / p95 ms | first text p50 / p95 ms | final p50 / p95 / p99 ms | after the endpoint p50 / p95 ms | WER | RTF | worst lag s | CPU s / audio s | peak RSS MB | RSS per stream MB | GPU util % / mem MiB | audio s sent / accepted / billed | errors |")
	fmt.Fprintln(w, "|---:|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---|---|---:|")
	for _, l := range r.Levels {
		var rss float64
		for _, p := range l.Procs {
			rss += p.PeakRSSMB
		}
		bill := "n/a"
		if l.BilledSec != nil {
			bill = fmt.Sprintf("%.3f", *l.BilledSec)
		}
		gpu := "–"
		if l.GPU != nil {
			gpu = fmt.Sprintf("%.0f / %.0f", l.GPU.UtilMeanPct, l.GPU.MemPeakMiB)
		}
		note := ""
		if l.OverKnee != "" {
			note = " (" + l.OverKnee + ")"
		}
		fmt.Fprintf(w, "| %d | %.0f / %.0f / %.0f | %.0f / %.0f | %.0f / %.0f | %.0f / %.0f / %.0f | %.0f / %.0f | %.1f%% | %.3f | %.2f | %.3f | %.0f | %s | %s | %.1f / %.1f / %s | %d%s |\n",
			l.Streams, l.PartialMs.P50, l.PartialMs.P95, l.PartialMs.P99, l.WordMs.P50, l.WordMs.P95, l.FirstMs.P50, l.FirstMs.P95,
			l.FinalMs.P50, l.FinalMs.P95, l.FinalMs.P99, l.FinalEndMs.P50, l.FinalEndMs.P95, 100*l.WER, l.RTF, l.LagMaxSec, l.CPUPerAudio, rss, perStream(r.IdleRSSMB, rss, l.Streams), gpu,
			l.AudioSec, l.AcceptedSec, bill, l.Errors, note)
	}
	if r.HumanRefClips > 0 {
		fmt.Fprintf(w, "\n%s over the %d of %d clips whose reference a person wrote (provenance.tsv beside the manifest; the others' references are another model's output):",
			errorRateName(r.Language)[:3], r.HumanRefClips, r.Clips)
		for i, l := range r.Levels {
			sep := ","
			if i == 0 {
				sep = ""
			}
			if l.WERHumanRef != nil {
				fmt.Fprintf(w, "%s %d streams %.1f%%", sep, l.Streams, 100**l.WERHumanRef)
			} else {
				fmt.Fprintf(w, "%s %d streams –", sep, l.Streams)
			}
		}
		fmt.Fprintln(w, ".")
	}
	if r.IdleRSSMB > 0 {
		fmt.Fprintf(w, "\nIdle RSS of the service processes before the first level: %.0f MB.\n", r.IdleRSSMB)
	}
	for _, l := range r.Levels {
		if len(l.Languages) > 0 {
			fmt.Fprintf(w, "\nFinals by detected_language at %d streams: %s.\n", l.Streams, languageCounts(l.Languages))
		}
	}
	if r.Knee > 0 {
		fmt.Fprintf(w, "\nKnee: %d concurrent streams stayed under the rule.\n", r.Knee)
	} else {
		fmt.Fprintf(w, "\nKnee: not even the first level stayed under the rule.\n")
	}
	fmt.Fprint(w, `
Definitions (stream clock = seconds of audio since the stream began; "sent(t)" = the wall
time at which the bench had written the frame that completes stream time t):
- partial latency: for each non-empty partial, arrival − sent(start + duration of the partial).
- word latency: for each word the first time it appears in a partial, arrival − sent(word end).
- first text latency: for each utterance, arrival of its first non-empty partial (or its
  final, if no partial came first) − sent(start of the utterance), the start being where
  the server's VAD heard speech begin (less its 200 ms pad).
- final latency: for each non-empty final, arrival − sent(the end of the speech it holds):
  where Silero, run on each clip with the server's endpointer (transcriber.SpeechRuns:
  thresholds 0.5 / 0.35, 250 ms minimum speech, 600 ms endpointing), heard the last speech
  before the final's end. It includes the endpointing silence the server waits for before
  it ends an utterance (600 ms by default). Without a Silero model the bench times finals
  from their own end instead, and the line above the table says so.
- after the endpoint: for each non-empty final, arrival − sent(start + duration of the
  final), its own end: the server's endpoint, after the endpointing silence. What is left
  of the final's work once the server has decided the utterance is over.
- WER: all finals of a stream joined, against the references of the clips it sent
  (internal/wer normalisation), pooled over streams; for Chinese, Japanese and Korean
  (--language) the character error rate instead (wer.ErrorRate). A result with a
  replacement character (broken UTF-8) counts as an error. When a provenance.tsv beside
  the manifest marks references that another model printed, the line under the table
  gives the rate over the other clips too: each final counted in the clip (with its gap)
  that holds its midpoint.
- RTF: stream wall time (first frame → close) / audio seconds; live audio cannot go below ~1.
- worst lag: the largest over the level's streams of the time from asking for the end of
  the stream (after its last frame) to its close: how far that stream was behind real time
  when its audio ended (≈ 0 when it kept up: its last final came during the last clip's
  1 s of silence). Above the final rule the level is over the knee.
- CPU s / audio s: CPU seconds of the measured service processes / audio seconds of the level.
- billed: growth of GET /v1/usage total_ms over the level (n/a when unavailable).
- RSS per stream: (the level's peak RSS − the idle RSS before the first level) / streams.
`)
}

func errorRateName(language string) string {
	if wer.UsesCER(language) {
		return "CER, characters"
	}
	return "WER, words"
}

// perStream is a level's RSS growth over idle per stream, in MB ("–" without an idle
// figure).
func perStream(idle, peak float64, streams int) string {
	if idle <= 0 || peak <= 0 || streams <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f", (peak-idle)/float64(streams))
}

// languageCounts is "en 28, zh 2": the most finals first, then by name.
func languageCounts(m map[string]int) string {
	ls := make([]string, 0, len(m))
	for l := range m {
		ls = append(ls, l)
	}
	sort.Slice(ls, func(i, j int) bool {
		if m[ls[i]] != m[ls[j]] {
			return m[ls[i]] > m[ls[j]]
		}
		return ls[i] < ls[j]
	})
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = fmt.Sprintf("%s %d", l, m[l])
	}
	return strings.Join(parts, ", ")
}
