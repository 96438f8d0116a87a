package ingest

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/earshot-dev/earshot/internal/testdata"
)

// pushAll feeds b to p in random whole-frame chunks and flushes.
func pushAll(t *testing.T, p *Pipeline, b []byte, rng *rand.Rand) [][]float32 {
	t.Helper()
	out := make([][]float32, p.Outputs())
	bpf := p.Format().BytesPerFrame()
	for len(b) > 0 {
		n := min(len(b), bpf*rng.IntN(900))
		got, err := p.Push(b[:n])
		if err != nil {
			t.Fatal(err)
		}
		for i := range out {
			out[i] = append(out[i], got[i]...)
		}
		b = b[n:]
	}
	for i, rest := range p.Flush() {
		out[i] = append(out[i], rest...)
	}
	return out
}

func interleave(ch ...[]float32) []float32 {
	out := make([]float32, 0, len(ch)*len(ch[0]))
	for i := range ch[0] {
		for _, c := range ch {
			out = append(out, c[i])
		}
	}
	return out
}

func TestPipelineAcceptedMs(t *testing.T) {
	for _, tc := range []struct {
		f      Format
		frames int
		wantMs int64
	}{
		{Format{Linear16, 44100, 2}, 44100, 1000},
		{Format{Linear16, 44100, 1}, 44099, 999},
		{Format{Mulaw, 8000, 1}, 8000 * 61, 61000},
		{Format{Float32, 48000, 1}, 47, 0},
		{Format{Linear16, 22050, 1}, 22050*20 + 11025, 20500},
	} {
		p, err := NewPipeline(tc.f, ModeDownmix)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(3, uint64(tc.frames)))
		left := tc.frames
		for left > 0 {
			n := min(left, 1+rng.IntN(20000))
			if _, err := p.Push(make([]byte, n*tc.f.BytesPerFrame())); err != nil {
				t.Fatal(err)
			}
			left -= n
		}
		if p.AcceptedMs() != tc.wantMs || p.AcceptedSamples() != int64(tc.frames) {
			t.Errorf("%v, %d frames: %d ms (%d samples), want %d ms", tc.f, tc.frames, p.AcceptedMs(), p.AcceptedSamples(), tc.wantMs)
		}
	}
}

func TestPipelineRejectsBadChunkWhole(t *testing.T) {
	p, _ := NewPipeline(Format{Linear16, 16000, 2}, ModeDownmix)
	if _, err := p.Push(make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Push(make([]byte, 63)); !errors.Is(err, ErrPartialFrame) {
		t.Fatalf("err = %v, want ErrPartialFrame", err)
	}
	if p.AcceptedSamples() != 16 {
		t.Fatalf("accepted %d frames, want 16 (the bad chunk must not count)", p.AcceptedSamples())
	}
}

func TestNewPipelineErrors(t *testing.T) {
	if _, err := NewPipeline(Format{Mulaw, 16000, 1}, ModeDownmix); !errors.Is(err, ErrSampleRate) {
		t.Errorf("mulaw at 16 kHz: err = %v", err)
	}
	if _, err := NewPipeline(Format{Linear16, 16000, 1}, ChannelMode(7)); !errors.Is(err, ErrChannelMode) {
		t.Errorf("mode 7: err = %v", err)
	}
}

func TestPipelineModes(t *testing.T) {
	left, right := tone(44100, 440, 44100), tone(44100, 3000, 44100)
	raw := PCM16Bytes(interleave(left, right))
	// What the pipeline should produce: the same audio converted in one go.
	q := func(x []float32) []float32 { return FromPCM16Bytes(PCM16Bytes(x)) }
	f := Format{Linear16, 44100, 2}
	wantL := Convert16kMono(f, [][]float32{q(left)})
	wantR := Convert16kMono(f, [][]float32{q(right)})
	wantMix := Convert16kMono(f, [][]float32{q(left), q(right)})

	p, _ := NewPipeline(f, ModePerChannel)
	got := pushAll(t, p, raw, rand.New(rand.NewPCG(9, 9)))
	if len(got) != 2 || !slices.Equal(got[0], wantL) || !slices.Equal(got[1], wantR) {
		t.Error("per-channel output differs from converting each channel whole")
	}
	if len(got[0]) != 16000 {
		t.Errorf("one second at 44.1 kHz gave %d samples at 16 kHz, want 16000", len(got[0]))
	}
	p, _ = NewPipeline(f, ModeDownmix)
	got = pushAll(t, p, raw, rand.New(rand.NewPCG(9, 10)))
	if len(got) != 1 || !slices.Equal(got[0], wantMix) {
		t.Error("downmix output differs from converting the downmix whole")
	}
}

// The phone path on real speech: 8 kHz prompts sent as µ-law come out at
// 16 kHz close to the same prompts sent as linear16 (G.711's ~35 dB).
func TestPipelinePhoneSpeech(t *testing.T) {
	dir := testdata.Require(t)
	items, err := testdata.LoadManifest(filepath.Join(dir, testdata.PhoneManifest))
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items[:5] {
		fh, err := os.Open(it.WAV)
		if err != nil {
			t.Fatal(err)
		}
		f, ch, err := ReadWAV(fh)
		fh.Close()
		if err != nil {
			t.Fatal(err)
		}
		ref := Convert16kMono(f, ch)
		for _, enc := range []Encoding{Mulaw, Alaw} {
			b := EncodeMulaw(ch[0])
			if enc == Alaw {
				b = EncodeAlaw(ch[0])
			}
			p, err := NewPipeline(Format{enc, 8000, 1}, ModeDownmix)
			if err != nil {
				t.Fatal(err)
			}
			got := pushAll(t, p, b, rand.New(rand.NewPCG(1, 1)))[0]
			if len(got) != len(ref) || p.AcceptedMs() != int64(len(ch[0]))/8 {
				t.Fatalf("%s %s: %d samples (%d ms), want %d", it.ID, enc, len(got), p.AcceptedMs(), len(ref))
			}
			var sig, noise float64
			for i := range ref {
				sig += float64(ref[i]) * float64(ref[i])
				d := float64(got[i] - ref[i])
				noise += d * d
			}
			snr := 10 * math.Log10(sig/noise)
			t.Logf("%s via %s: SNR %.1f dB against linear16", it.ID, enc, snr)
			if snr < 25 {
				t.Errorf("%s via %s: SNR %.1f dB, want >= 25", it.ID, enc, snr)
			}
		}
	}
}
