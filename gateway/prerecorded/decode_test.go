package prerecorded

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"testing"

	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/earshot-dev/earshot/ingest"
)

func spoolBytes(t testing.TB, b []byte, ctype string) *upload {
	t.Helper()
	u, err := spool(t.TempDir(), bytes.NewReader(b), int64(len(b))+1, ctype)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	return u
}

// drain reads a source to its end.
func drain(t testing.TB, s *pcmSource) []int16 {
	t.Helper()
	var out []int16
	for {
		x, err := s.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(x) == 0 {
			t.Fatal("Next returned an empty chunk")
		}
		out = append(out, x...)
	}
}

// toInt16 is the whole-file path's conversion, for comparison.
func stereo16(rate, frames int) []byte {
	var pcm bytes.Buffer
	for i := range frames {
		l := int16(9000 * math.Sin(2*math.Pi*440*float64(i)/float64(rate)))
		r := int16(7000 * math.Sin(2*math.Pi*1000*float64(i)/float64(rate)))
		_ = binary.Write(&pcm, binary.LittleEndian, [2]int16{l, r})
	}
	return pcm.Bytes()
}

func rawWAV(tag, ch, rate, bits int, data []byte) []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString("RIFF")
	_ = binary.Write(&b, le, uint32(36+len(data)))
	b.WriteString("WAVEfmt ")
	_ = binary.Write(&b, le, uint32(16))
	_ = binary.Write(&b, le, [2]uint16{uint16(tag), uint16(ch)})
	_ = binary.Write(&b, le, [2]uint32{uint32(rate), uint32(rate * ch * bits / 8)})
	_ = binary.Write(&b, le, [2]uint16{uint16(ch * bits / 8), uint16(bits)})
	b.WriteString("data")
	_ = binary.Write(&b, le, uint32(len(data)))
	b.Write(data)
	return b.Bytes()
}

// The streaming decode gives exactly what decoding the whole file at once gives, and
// says its length before decoding anything.
func TestOpenPCMMatchesWholeFile(t *testing.T) {
	wav := rawWAV(1, 2, 44100, 16, stereo16(44100, 44100*3+17))
	u := spoolBytes(t, wav, "audio/wav")
	src, err := openPCM(u, Params{})
	if err != nil {
		t.Fatal(err)
	}
	f, ch, err := ingest.ReadWAV(bytes.NewReader(wav))
	if err != nil {
		t.Fatal(err)
	}
	want := ingest.ToInt16(ingest.Convert16kMono(f, ch))
	if src.Samples != int64(len(want)) {
		t.Fatalf("announced %d samples, the whole-file path gives %d", src.Samples, len(want))
	}
	got := drain(t, src)
	if len(got) != len(want) || src.Produced() != int64(len(want)) {
		t.Fatalf("streamed %d samples (Produced %d), whole file %d", len(got), src.Produced(), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("sample %d: streamed %d, whole file %d", i, got[i], want[i])
		}
	}

	// Raw µ-law at 8 kHz, no WAV header.
	raw := make([]byte, 8000*2+3)
	for i := range raw {
		raw[i] = byte(i * 7)
	}
	u = spoolBytes(t, raw, "application/octet-stream")
	src, err = openPCM(u, Params{Params: wire.Params{Encoding: "mulaw", Channels: 1}})
	if err != nil {
		t.Fatal(err)
	}
	pl, _ := ingest.NewPipeline(ingest.Format{Encoding: ingest.Mulaw, SampleRate: 8000, Channels: 1}, ingest.ModeDownmix)
	outs, _ := pl.Push(raw)
	want = ingest.ToInt16(append(outs[0], pl.Flush()[0]...))
	if got := drain(t, src); !equal16(got, want) || src.Samples != int64(len(want)) {
		t.Fatalf("raw µ-law: streamed %d samples, announced %d, whole %d", len(got), src.Samples, len(want))
	}
}

func equal16(a, b []int16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Bad files are refused before any audio is produced, with ErrNotAudio or the
// parameter at fault.
func TestOpenPCMRefuses(t *testing.T) {
	nan := make([]byte, 4*16000)
	binary.LittleEndian.PutUint32(nan[4*15999:], math.Float32bits(float32(math.NaN())))
	cases := []struct {
		name  string
		body  []byte
		ctype string
		p     Params
		param bool // a *wire.ParamError (gateway.ParseFormat's judgement), else ErrNotAudio
	}{
		{"NaN in the last second of a float WAV", rawWAV(3, 1, 16000, 32, nan), "audio/wav", Params{}, false},
		{"NaN in raw float32", nan, "", Params{Params: wire.Params{Encoding: "float32", SampleRate: 16000, Channels: 1}}, false},
		{"raw linear16 with half a frame", []byte{1, 2, 3}, "", Params{Params: wire.Params{Encoding: "linear16", SampleRate: 16000, Channels: 1}}, false},
		{"a WAV with no samples", rawWAV(1, 1, 16000, 16, nil), "audio/wav", Params{}, false},
		{"data chunk claims more than the file", func() []byte {
			b := rawWAV(1, 1, 16000, 16, make([]byte, 100))
			binary.LittleEndian.PutUint32(b[40:], 1<<30)
			return b
		}(), "audio/wav", Params{}, false},
		{"not audio", []byte(`{"hello": "world"}`), "text/plain", Params{}, false},
		{"raw at 3 kHz", make([]byte, 100), "", Params{Params: wire.Params{Encoding: "linear16", SampleRate: 3000, Channels: 1}}, true},
	}
	for _, c := range cases {
		_, err := openPCM(spoolBytes(t, c.body, c.ctype), c.p)
		var pe *wire.ParamError
		switch {
		case !c.param && !errors.Is(err, ErrNotAudio):
			t.Errorf("%s: %v, want ErrNotAudio", c.name, err)
		case c.param && !errors.As(err, &pe):
			t.Errorf("%s: %v, want a bad parameter", c.name, err)
		}
	}
}

// FuzzOpenPCM: any upload either is refused (ErrNotAudio or a bad parameter) or
// streams exactly the number of samples it announced, in non-empty chunks.
func FuzzOpenPCM(f *testing.F) {
	f.Add(rawWAV(1, 2, 44100, 16, stereo16(44100, 300)), "")
	f.Add(rawWAV(7, 1, 8000, 8, []byte{0xff, 0x7f, 0}), "")
	f.Add(rawWAV(3, 1, 22050, 32, make([]byte, 400)), "")
	f.Add([]byte{1, 2, 3, 4}, "mulaw")
	f.Add(make([]byte, 960), "linear16")
	f.Fuzz(func(t *testing.T, body []byte, enc string) {
		p := Params{}
		if enc != "" {
			p.Encoding, p.SampleRate, p.Channels = enc, 16000, 1
			if enc == "mulaw" || enc == "alaw" {
				p.SampleRate = 8000
			}
		}
		u := spoolBytes(t, body, "")
		src, err := openPCM(u, p)
		if err != nil {
			var pe *wire.ParamError
			if !errors.Is(err, ErrNotAudio) && !errors.As(err, &pe) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if src.Samples <= 0 || src.Samples > int64(len(body))*6+16 {
			t.Fatalf("announced %d samples from %d bytes", src.Samples, len(body))
		}
		got := drain(t, src)
		if int64(len(got)) != src.Samples {
			t.Fatalf("streamed %d samples, announced %d", len(got), src.Samples)
		}
	})
}
