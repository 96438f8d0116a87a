package ingest

import (
	"fmt"
	"strconv"
	"strings"
)

// Encoding names how raw audio bytes encode samples. The names are Deepgram's
// where Deepgram has one, so existing clients work unchanged.
type Encoding string

// Supported encodings.
const (
	// Linear16 is signed 16-bit little-endian PCM.
	Linear16 Encoding = "linear16"
	// Float32 is 32-bit little-endian IEEE float PCM, nominally in [-1, 1].
	// Deepgram calls it "linear32"; both names are accepted.
	Float32 Encoding = "float32"
	// Mulaw is 8-bit G.711 µ-law.
	Mulaw Encoding = "mulaw"
	// Alaw is 8-bit G.711 A-law.
	Alaw Encoding = "alaw"
)

// Limits on stream formats.
const (
	MinSampleRate = 8000
	MaxSampleRate = 48000
	G711Rate      = 8000
	MaxChannels   = 8
)

// encodingAliases maps accepted names (lower case) to encodings.
var encodingAliases = map[string]Encoding{
	"linear16":  Linear16,
	"pcm_s16le": Linear16,
	"float32":   Float32,
	"linear32":  Float32,
	"pcm_f32le": Float32,
	"mulaw":     Mulaw,
	"ulaw":      Mulaw,
	"pcmu":      Mulaw,
	"alaw":      Alaw,
	"pcma":      Alaw,
}

const allowedEncodings = "linear16, float32 (alias linear32), mulaw, alaw"

// ParseEncoding maps a client's encoding name, case-insensitively, to an Encoding.
func ParseEncoding(s string) (Encoding, error) {
	e, ok := encodingAliases[strings.ToLower(strings.TrimSpace(s))]
	if !ok {
		return "", fmt.Errorf("encoding %q: %w (allowed: %s)", s, ErrUnsupportedEncoding, allowedEncodings)
	}
	return e, nil
}

// BytesPerSample is the size of one sample of one channel, or 0 for an unknown encoding.
func (e Encoding) BytesPerSample() int {
	switch e {
	case Linear16:
		return 2
	case Float32:
		return 4
	case Mulaw, Alaw:
		return 1
	}
	return 0
}

// Format describes a raw audio stream.
type Format struct {
	Encoding   Encoding
	SampleRate int
	Channels   int
}

// String renders the format as "linear16/16000Hz/1ch".
func (f Format) String() string {
	return fmt.Sprintf("%s/%dHz/%dch", f.Encoding, f.SampleRate, f.Channels)
}

// BytesPerFrame is the size of one sample frame (one sample of every channel).
func (f Format) BytesPerFrame() int { return f.Encoding.BytesPerSample() * f.Channels }

// ParseFormat parses the query parameters encoding, sample_rate and channels.
// An empty channels means 1. An empty sample_rate means 8000 for mulaw and alaw
// and is an error for the other encodings. The result is validated.
func ParseFormat(encoding, sampleRate, channels string) (Format, error) {
	enc, err := ParseEncoding(encoding)
	if err != nil {
		return Format{}, err
	}
	f := Format{Encoding: enc, Channels: 1}
	switch {
	case sampleRate == "" && (enc == Mulaw || enc == Alaw):
		f.SampleRate = G711Rate
	case sampleRate == "":
		return Format{}, fmt.Errorf("sample_rate is required for encoding %s: %w (allowed: %d..%d)",
			enc, ErrSampleRate, MinSampleRate, MaxSampleRate)
	default:
		if f.SampleRate, err = strconv.Atoi(strings.TrimSpace(sampleRate)); err != nil {
			return Format{}, fmt.Errorf("sample_rate %q is not an integer: %w", sampleRate, ErrSampleRate)
		}
	}
	if channels != "" {
		if f.Channels, err = strconv.Atoi(strings.TrimSpace(channels)); err != nil {
			return Format{}, fmt.Errorf("channels %q is not an integer: %w", channels, ErrChannels)
		}
	}
	if err := f.Validate(); err != nil {
		return Format{}, err
	}
	return f, nil
}

// Validate checks the format against what a live stream may use: linear16 and
// float32 at 8000..48000 Hz, mulaw and alaw at exactly 8000 Hz, 1..8 channels.
func (f Format) Validate() error {
	if f.Encoding.BytesPerSample() == 0 {
		return fmt.Errorf("encoding %q: %w (allowed: %s)", f.Encoding, ErrUnsupportedEncoding, allowedEncodings)
	}
	switch f.Encoding {
	case Mulaw, Alaw:
		if f.SampleRate != G711Rate {
			return fmt.Errorf("sample_rate %d for encoding %s: %w (allowed: %d)",
				f.SampleRate, f.Encoding, ErrSampleRate, G711Rate)
		}
	default:
		if f.SampleRate < MinSampleRate || f.SampleRate > MaxSampleRate {
			return fmt.Errorf("sample_rate %d for encoding %s: %w (allowed: %d..%d)",
				f.SampleRate, f.Encoding, ErrSampleRate, MinSampleRate, MaxSampleRate)
		}
	}
	if f.Channels < 1 || f.Channels > MaxChannels {
		return fmt.Errorf("channels %d: %w (allowed: 1..%d)", f.Channels, ErrChannels, MaxChannels)
	}
	return nil
}
