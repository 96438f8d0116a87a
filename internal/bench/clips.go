package bench

import (
	"bytes"
	"fmt"
	"os"

	"github.com/earshot-dev/earshot/ingest"
	"github.com/earshot-dev/earshot/internal/testdata"
)

// Clip is one utterance to stream: 16 kHz mono linear16 audio and its reference text.
type Clip struct {
	ID        string
	PCM       []byte // linear16 little-endian, 16 kHz, mono
	Reference string
	// ModelReference: the reference is another ASR model's output, not a person's
	// transcript (provenance.tsv beside the manifest). The report gives the error rate
	// over the other clips beside the rate over all.
	ModelReference bool
	// Speech is where the server's VAD hears speech in the clip, at its endpointing
	// (transcriber.SpeechRuns with Silero; `earshot bench` fills it): a final's latency
	// is measured from the end of the speech it holds. Nil: not measured; finals are
	// then timed from their own end, the endpoint.
	Speech []Span
}

// Span is a stretch of a clip or stream, in seconds.
type Span struct{ From, To float64 }

// Seconds is the clip's length.
func (c Clip) Seconds() float64 { return float64(len(c.PCM)) / 32000 }

// LoadClips reads the WAV files of a speech manifest (see internal/testdata). Every
// file must be 16 kHz mono: the bench streams them back to back on one connection.
// A provenance.tsv beside the manifest, when there is one (at most 1 MiB), marks the
// clips whose reference another model printed (Clip.ModelReference).
func LoadClips(manifest string) ([]Clip, error) {
	items, err := testdata.LoadManifest(manifest)
	if err != nil {
		return nil, err
	}
	prov, _, err := testdata.ProvenanceFor(manifest)
	if err != nil {
		return nil, err
	}
	clips := make([]Clip, 0, len(items))
	for _, it := range items {
		c, err := LoadWAV(it.WAV)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", it.ID, err)
		}
		c.ID, c.Reference = it.ID, it.Reference
		c.ModelReference = prov != nil && !prov.HumanReference(it.ID)
		clips = append(clips, c)
	}
	if len(clips) == 0 {
		return nil, fmt.Errorf("%s: %w", manifest, ErrNoClips)
	}
	return clips, nil
}

// LoadWAV reads one 16 kHz mono WAV file as a Clip without a reference.
func LoadWAV(path string) (Clip, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Clip{}, err
	}
	f, chans, err := ingest.ReadWAV(bytes.NewReader(b))
	if err != nil {
		return Clip{}, err
	}
	if f.SampleRate != 16000 || len(chans) != 1 {
		return Clip{}, fmt.Errorf("%s is %d Hz × %d channels: %w", path, f.SampleRate, len(chans), ErrClipFormat)
	}
	return Clip{ID: path, PCM: ingest.PCM16Bytes(chans[0])}, nil
}

// silence returns d seconds of 16 kHz linear16 zeros.
func silence(seconds float64) []byte { return make([]byte, 2*int(seconds*16000)) }
