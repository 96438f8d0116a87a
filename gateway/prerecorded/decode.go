package prerecorded

import (
	"fmt"
	"io"
	"mime"
	"strings"

	"github.com/earshot-dev/earshot/gateway"
	"github.com/earshot-dev/earshot/ingest"
)

// isWAV reports whether the body (its first 12 bytes suffice) is a RIFF/WAVE file or
// declared as one.
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

// srcChunk is how much source audio one pcmSource.Next decodes: half a second, as
// the worker takes it.
const srcChunk = 2 // per second

// pcmSource is an upload's audio as 16 kHz mono PCM16, decoded and resampled half a
// second at a time as the transcription takes it: memory does not grow with the file.
type pcmSource struct {
	// read returns the next source-rate mono samples, or io.EOF.
	read    func() ([]float32, error)
	rs      *ingest.Resampler // nil at 16 kHz
	flushed bool
	// Samples is the number of 16 kHz samples the whole file gives, known from its
	// header (WAV) or size (raw) before anything is decoded.
	Samples  int64
	produced int64
}

// openPCM opens an upload as a pcmSource: a WAV file by its header, raw audio by the
// declared encoding= (sample_rate=, channels=). Errors wrap ErrNotAudio or are
// gateway.ParseFormat's *wire.ParamError. Float samples are checked for NaN and ±Inf
// across the whole file here, so that a bad sample is refused before any audio is
// sent (and billed); the other encodings cannot fail to decode once the size is right.
func openPCM(u *upload, p Params) (*pcmSource, error) {
	var (
		s      = &pcmSource{}
		rate   int
		frames int64
		float  bool
	)
	switch {
	case isWAV(u.head(12), u.ctype):
		w, err := ingest.OpenWAV(u.reader())
		if err != nil {
			return nil, fmt.Errorf("%w: the WAV file does not decode: %v", ErrNotAudio, err)
		}
		rate, frames, float = w.Format().SampleRate, w.Frames(), w.Format().Encoding == ingest.Float32
		if float {
			if err := checkWAV(u); err != nil {
				return nil, err
			}
		}
		s.read = func() ([]float32, error) {
			ch, err := w.Read(rate / srcChunk)
			if err != nil {
				return nil, err
			}
			return ingest.Downmix(ch), nil
		}
	case p.Encoding != "":
		// The live path's judge of the declared format.
		f, err := gateway.ParseFormat(p.Encoding, p.SampleRate, p.Channels)
		if err != nil {
			return nil, err
		}
		rate = f.SampleRate
		bpf := int64(f.BytesPerFrame())
		if u.size%bpf != 0 {
			return nil, fmt.Errorf("%w: the body does not decode as %s: %d bytes is not a whole number of %d-byte frames",
				ErrNotAudio, p.Encoding, u.size, bpf)
		}
		frames, float = u.size/bpf, f.Encoding == ingest.Float32
		dec := ingest.NewDecoder(f)
		if float {
			if err := checkRaw(u, dec, int(bpf)*rate); err != nil {
				return nil, err
			}
		}
		r := u.reader()
		buf := make([]byte, int(bpf)*(rate/srcChunk))
		s.read = func() ([]float32, error) {
			n, err := io.ReadFull(r, buf)
			if n == 0 {
				if err == nil || err == io.ErrUnexpectedEOF {
					err = io.EOF
				}
				return nil, err
			}
			ch, err := dec.Decode(buf[:n])
			if err != nil {
				return nil, fmt.Errorf("%w: the body does not decode as %s: %v", ErrNotAudio, p.Encoding, err)
			}
			return ingest.Downmix(ch), nil
		}
	default:
		mt, _, _ := mime.ParseMediaType(u.ctype)
		if mt == "" {
			mt = "no Content-Type"
		}
		return nil, fmt.Errorf("%w: the body (%s) is not a WAV file; send audio/wav, or raw audio with ?encoding=linear16|mulaw&sample_rate=", ErrNotAudio, mt)
	}
	if frames == 0 {
		return nil, fmt.Errorf("%w: the file holds no audio samples", ErrNotAudio)
	}
	if rate != ingest.TargetRate {
		s.rs = ingest.NewResampler(rate, ingest.TargetRate)
	}
	// The resampler emits round(frames·16000/rate) samples in all (ingest.Resampler).
	s.Samples = (frames*ingest.TargetRate + int64(rate)/2) / int64(rate)
	return s, nil
}

// Next returns the next 16 kHz samples (never an empty slice), or io.EOF after the last.
func (s *pcmSource) Next() ([]int16, error) {
	for {
		if s.flushed {
			return nil, io.EOF
		}
		x, err := s.read()
		switch {
		case err == io.EOF:
			s.flushed = true
			if s.rs == nil {
				return nil, io.EOF
			}
			x = s.rs.Flush()
		case err != nil:
			return nil, err
		case s.rs != nil:
			x = s.rs.Process(x)
		}
		if len(x) == 0 {
			continue
		}
		out := ingest.ToInt16(x)
		s.produced += int64(len(out))
		return out, nil
	}
}

// Produced is the number of 16 kHz samples Next has returned.
func (s *pcmSource) Produced() int64 { return s.produced }

// checkWAV decodes a float WAV file once, a second at a time, for NaN and ±Inf.
func checkWAV(u *upload) error {
	w, err := ingest.OpenWAV(u.reader())
	if err != nil {
		return fmt.Errorf("%w: the WAV file does not decode: %v", ErrNotAudio, err)
	}
	for {
		if _, err := w.Read(w.Format().SampleRate); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("%w: the WAV file does not decode: %v", ErrNotAudio, err)
		}
	}
}

// checkRaw decodes raw float audio once, chunk bytes at a time, for NaN and ±Inf.
func checkRaw(u *upload, dec *ingest.Decoder, chunk int) error {
	r, buf := u.reader(), make([]byte, chunk)
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if _, derr := dec.Decode(buf[:n]); derr != nil {
				return fmt.Errorf("%w: the body does not decode as %s: %v", ErrNotAudio, dec.Format().Encoding, derr)
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil // the size was checked: the end of the file
		}
		if err != nil {
			return fmt.Errorf("read the spooled upload: %w", err)
		}
	}
}

// isJSON reports whether the request body is a JSON {"url": ...} document.
func isJSON(contentType string) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}
