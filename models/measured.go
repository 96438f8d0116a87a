package models

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"sync"
)

// Measured is what `earshot models measure` (make model-cards) found for one model on
// a stated machine: quality and speed per language on the project's dev sets, offline and
// streamed through the public API. The committed measurements (measured.json) are
// shown on the model's card.
type Measured struct {
	Machine string `json:"machine"` // CPU, cores, what else ran
	Date    string `json:"date"`    // UTC, RFC 3339
	Version string `json:"version"` // earshot version that measured
	// File is the measured file's sha256 and size, and where it came from.
	SHA256    string `json:"sha256"`
	SizeBytes int64  `json:"size_bytes"`
	Source    string `json:"source"`
	// PeakRSSMB is the peak resident memory of `earshot serve` with this model alone
	// loaded while it served one live stream (the gateway, NATS and the VAD included).
	PeakRSSMB float64                     `json:"peak_rss_mb"`
	Languages map[string]MeasuredLanguage `json:"languages"`
}

// MeasuredLanguage is one language's figures.
type MeasuredLanguage struct {
	Set    string `json:"set"`    // dev set: manifest path under ../shared/testdata
	Clips  int    `json:"clips"`  // clips in it
	Metric string `json:"metric"` // "WER" or "CER"
	// OfflineErrorRate is the whole-file error rate (percent) of every clip decoded on
	// its own; OfflineRTF the decode time over the audio time (2 threads).
	OfflineErrorRate float64 `json:"offline_error_rate"`
	OfflineRTF       float64 `json:"offline_rtf"`
	// Streaming: the set streamed in real time on one connection through /v1/listen
	// (earshot bench definitions): error rate of the finals and latencies in ms.
	StreamErrorRate float64 `json:"stream_error_rate"`
	StreamSeconds   float64 `json:"stream_seconds"`
	FirstTextP50Ms  float64 `json:"first_text_p50_ms"`
	FirstTextP95Ms  float64 `json:"first_text_p95_ms"`
	PartialP50Ms    float64 `json:"partial_p50_ms"`
	FinalP50Ms      float64 `json:"final_p50_ms"`
	FinalP95Ms      float64 `json:"final_p95_ms"`
	// FinalFrom is where the final latencies start: "speech end" (where the bench's
	// Silero heard the speech end, the 600 ms endpointing silence included) or
	// "endpoint" (the final's own end, after that silence: measurements before
	// 2026-12-06 14:00 UTC).
	FinalFrom string `json:"final_from,omitempty"`
}

// MeasuredFile is the committed measurements file: model name → measurement.
type MeasuredFile map[string]Measured

//go:embed measured.json
var measuredJSON []byte

var measured = sync.OnceValues(func() (MeasuredFile, error) { return parseMeasured(measuredJSON) })

// parseMeasured decodes measured.json strictly: an unknown key is a typo or a file
// from another version, either way figures the cards would not show.
func parseMeasured(b []byte) (MeasuredFile, error) {
	var m MeasuredFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("models/measured.json: %w (regenerate it with make model-cards)", err)
	}
	return m, nil
}

// MeasuredErr says why the committed measurements cannot be read, nil when they can.
// A broken measured.json leaves every card without its measurements (MeasuredOf finds
// none), so whoever shows cards (earshot models list and card, serve's /v1/models)
// reports this error instead of showing cards that silently lost them.
func MeasuredErr() error {
	_, err := measured()
	return err
}

// MeasuredOf returns the committed measurement of model name, if any; none for any
// model when measured.json cannot be read (MeasuredErr).
func MeasuredOf(name string) (Measured, bool) {
	m, err := measured()
	if err != nil {
		return Measured{}, false
	}
	v, ok := m[name]
	return v, ok
}
