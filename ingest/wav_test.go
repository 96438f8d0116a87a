package ingest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-audio/audio"
	"github.com/go-audio/wav"

	"github.com/earshot-dev/earshot/internal/testdata"
)

// makeWAV builds a WAV file by hand; chunks are inserted before the data chunk.
func makeWAV(tag uint16, ch, rate, bits int, data []byte, before ...[]byte) []byte {
	le := binary.LittleEndian
	var b bytes.Buffer
	b.WriteString("RIFF\x00\x00\x00\x00WAVE")
	fmtc := make([]byte, 24)
	copy(fmtc, "fmt ")
	le.PutUint32(fmtc[4:], 16)
	le.PutUint16(fmtc[8:], tag)
	le.PutUint16(fmtc[10:], uint16(ch))
	le.PutUint32(fmtc[12:], uint32(rate))
	le.PutUint32(fmtc[16:], uint32(rate*ch*bits/8))
	le.PutUint16(fmtc[20:], uint16(ch*bits/8))
	le.PutUint16(fmtc[22:], uint16(bits))
	b.Write(fmtc)
	for _, c := range before {
		b.Write(c)
	}
	b.WriteString("data")
	binary.Write(&b, le, uint32(len(data)))
	b.Write(data)
	out := b.Bytes()
	le.PutUint32(out[4:], uint32(len(out)-8))
	return out
}

func chunk(id string, body []byte) []byte {
	c := append([]byte(id), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(c[4:], uint32(len(body)))
	c = append(c, body...)
	if len(body)%2 == 1 {
		c = append(c, 0)
	}
	return c
}

func TestReadWAVKinds(t *testing.T) {
	f64 := make([]byte, 16)
	binary.LittleEndian.PutUint64(f64, math.Float64bits(0.25))
	binary.LittleEndian.PutUint64(f64[8:], math.Float64bits(-4))
	ext := make([]byte, 40) // WAVE_FORMAT_EXTENSIBLE fmt chunk, µ-law subformat
	le := binary.LittleEndian
	le.PutUint16(ext[0:], wavExtensible)
	le.PutUint16(ext[2:], 1)
	le.PutUint32(ext[4:], 8000)
	le.PutUint16(ext[14:], 8)
	le.PutUint16(ext[16:], 22)
	le.PutUint16(ext[24:], wavMulaw)
	extFile := append([]byte("RIFF\x00\x00\x00\x00WAVE"), chunk("fmt ", ext)...)
	extFile = append(extFile, chunk("data", []byte{0x80, 0x00})...)

	for _, tc := range []struct {
		name string
		file []byte
		f    Format
		want [][]float32
	}{
		{"pcm8 unsigned", makeWAV(1, 1, 8000, 8, []byte{0, 128, 192}), Format{Linear16, 8000, 1}, [][]float32{{-1, 0, 0.5}}},
		{"pcm24 stereo", makeWAV(1, 2, 48000, 24, []byte{0, 0, 0x40, 0, 0, 0x80}), Format{Linear16, 48000, 2}, [][]float32{{0.5}, {-1}}},
		{"pcm32", makeWAV(1, 1, 44100, 32, []byte{0, 0, 0, 0xC0}), Format{Linear16, 44100, 1}, [][]float32{{-0.5}}},
		{"float32", makeWAV(3, 1, 16000, 32, f32bytes(0.5, 2)), Format{Float32, 16000, 1}, [][]float32{{0.5, 1}}},
		{"float64 clipped", makeWAV(3, 1, 16000, 64, f64), Format{Float32, 16000, 1}, [][]float32{{0.25, -1}}},
		{"mulaw at 16k", makeWAV(7, 1, 16000, 8, []byte{0xff, 0x80}), Format{Mulaw, 16000, 1}, [][]float32{{0, 32124.0 / 32768}}},
		{"alaw", makeWAV(6, 1, 8000, 8, []byte{0xd5}), Format{Alaw, 8000, 1}, [][]float32{{8.0 / 32768}}},
		{"extensible mulaw", extFile, Format{Mulaw, 8000, 1}, [][]float32{{32124.0 / 32768, -32124.0 / 32768}}},
		{"odd LIST chunk first, trailing partial frame", makeWAV(1, 1, 16000, 16, []byte{0, 0x40, 7}, chunk("LIST", []byte("abc"))),
			Format{Linear16, 16000, 1}, [][]float32{{0.5}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, ch, err := ReadWAV(bytes.NewReader(tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if f != tc.f {
				t.Errorf("format %v, want %v", f, tc.f)
			}
			if len(ch) != len(tc.want) {
				t.Fatalf("%d channels, want %d", len(ch), len(tc.want))
			}
			for c := range ch {
				if len(ch[c]) != len(tc.want[c]) {
					t.Fatalf("channel %d = %v, want %v", c, ch[c], tc.want[c])
				}
				for i := range ch[c] {
					if ch[c][i] != tc.want[c][i] {
						t.Fatalf("channel %d = %v, want %v", c, ch[c], tc.want[c])
					}
				}
			}
		})
	}
}

func TestReadWAVErrors(t *testing.T) {
	good := makeWAV(1, 1, 16000, 16, make([]byte, 200))
	long := bytes.Clone(good)
	binary.LittleEndian.PutUint32(long[40:], 1<<31) // data claims 2 GB
	streaming := bytes.Clone(good)
	binary.LittleEndian.PutUint32(streaming[40:], 0xFFFFFFFF)
	if _, ch, err := ReadWAV(bytes.NewReader(streaming)); err != nil || len(ch[0]) != 100 {
		t.Fatalf("data size 0xFFFFFFFF should read to the end of the file: %v", err)
	}
	for _, tc := range []struct {
		name string
		file []byte
		err  error
		msg  string
	}{
		{"empty", nil, ErrBadWAV, "RIFF header"},
		{"not RIFF", []byte("RIFX\x00\x00\x00\x00WAVEfmt "), ErrBadWAV, "not a RIFF/WAVE"},
		{"header only", good[:12], ErrBadWAV, "no fmt chunk"},
		{"truncated fmt", good[:30], ErrBadWAV, "fmt chunk claims 16 bytes"},
		{"no data", good[:36], ErrBadWAV, "no data chunk"},
		{"truncated data", good[:100], ErrBadWAV, "data chunk claims 200 bytes but the file has 56"},
		{"data longer than file", long, ErrBadWAV, "claims 2147483648 bytes"},
		{"zero channels", makeWAV(1, 0, 16000, 16, nil), ErrChannels, "0 channels"},
		{"nine channels", makeWAV(1, 9, 16000, 16, nil), ErrChannels, "allowed: 1..8"},
		{"absurd rate", makeWAV(1, 1, 4000000000, 16, nil), ErrSampleRate, "4000000000"},
		{"low rate", makeWAV(1, 1, 4000, 16, nil), ErrSampleRate, "allowed: 8000..48000"},
		{"adpcm", makeWAV(2, 1, 8000, 4, []byte{1}), ErrBadWAV, "format code 2"},
		{"pcm12", makeWAV(1, 1, 8000, 12, []byte{1, 2}), ErrBadWAV, "12 bits"},
		{"NaN float", makeWAV(3, 1, 16000, 32, f32bytes(float32(math.NaN()))), ErrNaN, "frame 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ReadWAV(bytes.NewReader(tc.file))
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %v saying %q", err, tc.err, tc.msg)
			}
		})
	}
}

func TestWriteWAV16RoundTrip(t *testing.T) {
	x := tone(16000, 440, 1600)
	var b bytes.Buffer
	if err := WriteWAV16(&b, 16000, x); err != nil {
		t.Fatal(err)
	}
	f, ch, err := ReadWAV(bytes.NewReader(b.Bytes()))
	if err != nil || f != (Format{Linear16, 16000, 1}) || len(ch[0]) != len(x) {
		t.Fatalf("ReadWAV: %v %v %d", f, err, len(ch[0]))
	}
	for i := range x {
		if math.Abs(float64(ch[0][i]-x[i])) > 1.0/32768 {
			t.Fatalf("sample %d: %v, wrote %v", i, ch[0][i], x[i])
		}
	}
	// go-audio/wav, an independent reader, agrees.
	d := wav.NewDecoder(bytes.NewReader(b.Bytes()))
	buf, err := d.FullPCMBuffer()
	if err != nil || d.SampleRate != 16000 || d.BitDepth != 16 || len(buf.Data) != len(x) {
		t.Fatalf("go-audio/wav: %v rate %d depth %d len %d", err, d.SampleRate, d.BitDepth, len(buf.Data))
	}
	for i, v := range buf.Data {
		if float32(v)/32768 != ch[0][i] {
			t.Fatalf("sample %d: go-audio %d, ReadWAV %v", i, v, ch[0][i])
		}
	}
}

// Files written by go-audio/wav's encoder, an independent writer, read back.
func TestReadWAVFromGoAudio(t *testing.T) {
	for _, tc := range []struct{ bits, ch, rate int }{{8, 1, 8000}, {16, 2, 44100}, {24, 3, 48000}, {32, 1, 22050}} {
		p := filepath.Join(t.TempDir(), "x.wav")
		fh, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		enc := wav.NewEncoder(fh, tc.rate, tc.bits, tc.ch, 1)
		full := 1 << (tc.bits - 1)
		n := 50
		data := make([]int, n*tc.ch)
		for i := range data {
			data[i] = (i*7919)%(2*full) - full // spans the whole range
			if tc.bits == 8 {
				data[i] += 128 // go-audio writes 8-bit samples as given: unsigned
			}
		}
		buf := &audio.IntBuffer{Data: data, Format: &audio.Format{NumChannels: tc.ch, SampleRate: tc.rate}, SourceBitDepth: tc.bits}
		if err := enc.Write(buf); err != nil {
			t.Fatal(err)
		}
		if err := enc.Close(); err != nil {
			t.Fatal(err)
		}
		fh.Close()
		raw, _ := os.ReadFile(p)
		f, chans, err := ReadWAV(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%d-bit: %v", tc.bits, err)
		}
		if f.SampleRate != tc.rate || f.Channels != tc.ch || len(chans[0]) != n {
			t.Fatalf("%d-bit: format %v, %d frames", tc.bits, f, len(chans[0]))
		}
		for i := range n {
			for c := range tc.ch {
				v := data[i*tc.ch+c]
				if tc.bits == 8 {
					v -= 128
				}
				if want := float32(float64(v) / float64(full)); chans[c][i] != want {
					t.Fatalf("%d-bit frame %d ch %d: %v, want %v", tc.bits, i, c, chans[c][i], want)
				}
			}
		}
	}
}

// The shared recordings read with the rate and length their manifests give.
func TestReadWAVSharedSpeech(t *testing.T) {
	dir := testdata.Require(t)
	for _, m := range []struct {
		path string
		rate int
	}{{testdata.SpeechManifest, 16000}, {testdata.PhoneManifest, 8000}} {
		items, err := testdata.LoadManifest(filepath.Join(dir, m.path))
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			fh, err := os.Open(it.WAV)
			if err != nil {
				t.Fatal(err)
			}
			f, ch, err := ReadWAV(fh)
			fh.Close()
			if err != nil {
				t.Fatalf("%s: %v", it.ID, err)
			}
			ms := int64(len(ch[0])) * 1000 / int64(f.SampleRate)
			if f.SampleRate != m.rate || f.Channels != 1 || math.Abs(float64(ms-it.Duration.Milliseconds())) > 1 {
				t.Errorf("%s: %v, %d ms; manifest says %d Hz, %v", it.ID, f, ms, m.rate, it.Duration)
			}
		}
	}
}
