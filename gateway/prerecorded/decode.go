package prerecorded

import (
	"bytes"
	"fmt"
	"math"
	"mime"
	"strings"

	"github.com/earshot-dev/earshot/gateway"
	"github.com/earshot-dev/earshot/ingest"
)

// isWAV reports whether the body is a RIFF/WAVE file or declared as one.
func isWAV(b []byte, contentType string) bool {
	if len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WAVE" {
		return true
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	switch mt {
	case "audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave":
		return true
	}
	return false
}

// decode turns an uploaded file into 16 kHz mono PCM16: a WAV file by its header, raw
// audio by the declared encoding= (sample_rate=, channels=). Errors wrap ErrNotAudio or
// are the pipeline factory's *wire.ParamError.
func decode(b []byte, contentType string, p Params, pipelines gateway.PipelineFactory) ([]int16, error) {
	var mono []float32
	switch {
	case isWAV(b, contentType):
		f, ch, err := ingest.ReadWAV(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("%w: the WAV file does not decode: %v", ErrNotAudio, err)
		}
		mono = ingest.Convert16kMono(f, ch)
	case p.Encoding != "":
		pl, err := pipelines(gateway.AudioFormat{Encoding: p.Encoding, SampleRate: p.SampleRate, Channels: p.Channels})
		if err != nil {
			return nil, err
		}
		outs, err := pl.Push(b)
		if err != nil {
			return nil, fmt.Errorf("%w: the body does not decode as %s: %v", ErrNotAudio, p.Encoding, err)
		}
		tail := pl.Flush()
		if len(outs) > 0 {
			mono = outs[0]
		}
		if len(tail) > 0 {
			mono = append(mono, tail[0]...)
		}
	default:
		mt, _, _ := mime.ParseMediaType(contentType)
		if mt == "" {
			mt = "no Content-Type"
		}
		return nil, fmt.Errorf("%w: the body (%s) is not a WAV file; send audio/wav, or raw audio with ?encoding=linear16|mulaw&sample_rate=", ErrNotAudio, mt)
	}
	if len(mono) == 0 {
		return nil, fmt.Errorf("%w: the file holds no audio samples", ErrNotAudio)
	}
	out := make([]int16, len(mono))
	for i, v := range mono {
		out[i] = int16(max(-32768, min(32767, math.Round(float64(v)*32767))))
	}
	return out, nil
}

// isJSON reports whether the request body is a JSON {"url": ...} document.
func isJSON(contentType string) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}
