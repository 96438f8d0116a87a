package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// WAV format codes (the fmt chunk's wFormatTag).
const (
	wavPCM        = 1
	wavFloat      = 3
	wavAlaw       = 6
	wavMulaw      = 7
	wavExtensible = 0xFFFE
)

// unknownSize is what streaming writers put in a data chunk's size when they
// cannot seek back to fix it; it means "to the end of the file".
const unknownSize = 0xFFFFFFFF

// maxFmtChunk bounds how much of a fmt chunk is read; the longest real one
// (WAVE_FORMAT_EXTENSIBLE) is 40 bytes.
const maxFmtChunk = 256

type wavFmt struct {
	tag      uint16
	channels int
	rate     int
	bits     int
}

// ReadWAV reads a whole RIFF/WAVE file: integer PCM of 8, 16, 24 or 32 bits,
// IEEE float of 32 or 64 bits, G.711 A-law and µ-law, plain or
// WAVE_FORMAT_EXTENSIBLE, 1..8 channels at 8000..48000 Hz (G.711 files too).
// It returns one slice of samples in [-1, 1] per channel at the file's rate.
//
// The returned Format's Encoding names the family the file decoded from:
// Linear16 for integer PCM of any width, Float32, Mulaw or Alaw.
//
// A data chunk is trusted only as far as the file really extends: a size that
// runs past the end is ErrBadWAV (unless it is 0xFFFFFFFF, the streaming
// writers' "unknown", read to the end of the file), so a header cannot make
// ReadWAV allocate more than the file holds. A trailing partial frame is
// dropped. All errors wrap ErrBadWAV, ErrChannels, ErrSampleRate or ErrNaN.
//
// ReadWAV holds the whole file in memory; OpenWAV reads one in bounded chunks.
func ReadWAV(r io.ReadSeeker) (Format, [][]float32, error) {
	w, err := OpenWAV(r)
	if err != nil {
		return Format{}, nil, err
	}
	chans, err := w.Read(int(min(w.Frames(), math.MaxInt32)))
	if err == io.EOF {
		err = nil
		chans = make([][]float32, w.Format().Channels)
		for c := range chans {
			chans[c] = []float32{}
		}
	}
	if err != nil {
		return Format{}, nil, err
	}
	return w.Format(), chans, nil
}

// WAVReader reads the samples of a RIFF/WAVE file in chunks, so that memory does
// not grow with the file: OpenWAV parses the header (the rules of ReadWAV), and
// Read returns the next frames. Not safe for concurrent use.
type WAVReader struct {
	r      io.Reader
	wf     *wavFmt
	f      Format
	bps    int   // bytes per sample of one channel
	frames int64 // whole frames in the data chunk
	read   int64 // frames returned so far
	buf    []byte
}

// OpenWAV parses the header of a RIFF/WAVE file and leaves r at the start of its
// samples. Errors are ReadWAV's.
func OpenWAV(r io.ReadSeeker) (*WAVReader, error) {
	fileSize, err := r.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("wav: size: %w", err)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("wav: rewind: %w", err)
	}
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("wav: RIFF header of %d bytes: %w", fileSize, ErrBadWAV)
	}
	if string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" {
		return nil, fmt.Errorf("wav: not a RIFF/WAVE file (starts %q): %w", hdr[:4], ErrBadWAV)
	}
	var (
		wf               *wavFmt
		dataOff, dataLen int64 = -1, 0
	)
	pos := int64(12)
	for pos+8 <= fileSize && (wf == nil || dataOff < 0) {
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			return nil, fmt.Errorf("wav: chunk header at %d: %w", pos, ErrBadWAV)
		}
		id, size := string(ch[0:4]), int64(binary.LittleEndian.Uint32(ch[4:8]))
		pos += 8
		remain := fileSize - pos
		switch id {
		case "fmt ":
			if size > remain {
				return nil, fmt.Errorf("wav: fmt chunk claims %d bytes, %d remain: %w", size, remain, ErrBadWAV)
			}
			if wf, err = readFmt(r, size); err != nil {
				return nil, err
			}
		case "data":
			if size == unknownSize {
				size = remain
			}
			if size > remain {
				return nil, fmt.Errorf("wav: data chunk claims %d bytes but the file has %d after its header: %w",
					size, remain, ErrBadWAV)
			}
			dataOff, dataLen = pos, size
		}
		pos += size + size&1 // chunks are word aligned
		if _, err := r.Seek(pos, io.SeekStart); err != nil {
			return nil, fmt.Errorf("wav: seek to %d: %w", pos, err)
		}
	}
	if wf == nil {
		return nil, fmt.Errorf("wav: no fmt chunk: %w", ErrBadWAV)
	}
	if dataOff < 0 {
		return nil, fmt.Errorf("wav: no data chunk: %w", ErrBadWAV)
	}
	f, bps, err := wf.format()
	if err != nil {
		return nil, err
	}
	if _, err := r.Seek(dataOff, io.SeekStart); err != nil {
		return nil, fmt.Errorf("wav: seek to data: %w", err)
	}
	return &WAVReader{r: r, wf: wf, f: f, bps: bps, frames: dataLen / int64(bps*f.Channels)}, nil
}

// Format is the file's format (see ReadWAV for its Encoding).
func (w *WAVReader) Format() Format { return w.f }

// Frames is the number of whole sample frames in the data chunk.
func (w *WAVReader) Frames() int64 { return w.frames }

// Read returns up to maxFrames frames (at least 1), one slice per channel,
// and io.EOF once every frame has been returned. A file that ends before its
// data chunk does is ErrBadWAV; a non-finite float sample is ErrNaN.
func (w *WAVReader) Read(maxFrames int) ([][]float32, error) {
	n := min(int64(max(maxFrames, 1)), w.frames-w.read)
	if n <= 0 {
		return nil, io.EOF
	}
	size := int(n) * w.bps * w.f.Channels
	if cap(w.buf) < size {
		w.buf = make([]byte, size)
	}
	data := w.buf[:size]
	if _, err := io.ReadFull(w.r, data); err != nil {
		return nil, fmt.Errorf("wav: read %d data bytes at frame %d: %w: %w", size, w.read, ErrBadWAV, err)
	}
	chans, err := decodeWAVData(data, w.wf, w.f.Channels, w.bps, w.read)
	if err != nil {
		return nil, err
	}
	w.read += n
	return chans, nil
}

func readFmt(r io.Reader, size int64) (*wavFmt, error) {
	if size < 16 {
		return nil, fmt.Errorf("wav: fmt chunk of %d bytes, need 16: %w", size, ErrBadWAV)
	}
	b := make([]byte, min(size, maxFmtChunk))
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("wav: fmt chunk: %w", ErrBadWAV)
	}
	le := binary.LittleEndian
	wf := &wavFmt{
		tag:      le.Uint16(b[0:]),
		channels: int(le.Uint16(b[2:])),
		rate:     int(le.Uint32(b[4:])),
		bits:     int(le.Uint16(b[14:])),
	}
	if wf.tag == wavExtensible {
		if len(b) < 26 {
			return nil, fmt.Errorf("wav: extensible fmt chunk of %d bytes, need 26: %w", size, ErrBadWAV)
		}
		wf.tag = le.Uint16(b[24:]) // first two bytes of the SubFormat GUID
	}
	return wf, nil
}

// format checks the fmt chunk and returns the Format and bytes per sample.
func (wf *wavFmt) format() (Format, int, error) {
	if wf.channels < 1 || wf.channels > MaxChannels {
		return Format{}, 0, fmt.Errorf("wav: %d channels: %w (allowed: 1..%d)", wf.channels, ErrChannels, MaxChannels)
	}
	if wf.rate < MinSampleRate || wf.rate > MaxSampleRate {
		return Format{}, 0, fmt.Errorf("wav: sample rate %d: %w (allowed: %d..%d)",
			wf.rate, ErrSampleRate, MinSampleRate, MaxSampleRate)
	}
	f := Format{SampleRate: wf.rate, Channels: wf.channels}
	switch {
	case wf.tag == wavPCM && (wf.bits == 8 || wf.bits == 16 || wf.bits == 24 || wf.bits == 32):
		f.Encoding = Linear16
	case wf.tag == wavFloat && (wf.bits == 32 || wf.bits == 64):
		f.Encoding = Float32
	case wf.tag == wavMulaw && wf.bits == 8:
		f.Encoding = Mulaw
	case wf.tag == wavAlaw && wf.bits == 8:
		f.Encoding = Alaw
	default:
		return Format{}, 0, fmt.Errorf("wav: format code %d with %d bits per sample: %w "+
			"(supported: PCM 8/16/24/32, float 32/64, A-law 8, µ-law 8)", wf.tag, wf.bits, ErrBadWAV)
	}
	return f, wf.bits / 8, nil
}

// decodeWAVData decodes whole frames; first is the index of the first frame in
// the file (for error messages).
func decodeWAVData(data []byte, wf *wavFmt, nch, bps int, first int64) ([][]float32, error) {
	n := len(data) / (bps * nch)
	out := make([][]float32, nch)
	for c := range out {
		out[c] = make([]float32, n)
	}
	le := binary.LittleEndian
	for i := range n {
		for c := range nch {
			b := data[(i*nch+c)*bps:]
			var x float32
			switch {
			case wf.tag == wavMulaw:
				x = mulawTable[b[0]]
			case wf.tag == wavAlaw:
				x = alawTable[b[0]]
			case wf.tag == wavFloat:
				v := float64(math.Float32frombits(le.Uint32(b)))
				if bps == 8 {
					v = math.Float64frombits(le.Uint64(b))
				}
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return nil, fmt.Errorf("wav: frame %d channel %d is %v: %w", first+int64(i), c, v, ErrNaN)
				}
				x = float32(min(max(v, -1), 1))
			case bps == 1: // 8-bit PCM is unsigned
				x = float32(int(b[0])-128) / 128
			case bps == 2:
				x = float32(int16(le.Uint16(b))) / (1 << 15)
			case bps == 3:
				x = float32(int32(uint32(b[0])<<8|uint32(b[1])<<16|uint32(b[2])<<24)>>8) / (1 << 23)
			default:
				x = float32(float64(int32(le.Uint32(b))) / (1 << 31))
			}
			out[c][i] = x
		}
	}
	return out, nil
}

// WriteWAV16 writes mono 16-bit PCM WAV (samples clipped to [-1, 1]).
func WriteWAV16(w io.Writer, rate int, samples []float32) error {
	if rate <= 0 {
		return fmt.Errorf("wav: write rate %d: %w", rate, ErrSampleRate)
	}
	dataLen := 2 * len(samples)
	if int64(dataLen) > math.MaxUint32-36 {
		return errors.New("wav: too many samples for one WAV file")
	}
	h := make([]byte, 44)
	le := binary.LittleEndian
	copy(h[0:], "RIFF")
	le.PutUint32(h[4:], uint32(36+dataLen))
	copy(h[8:], "WAVEfmt ")
	le.PutUint32(h[16:], 16)
	le.PutUint16(h[20:], wavPCM)
	le.PutUint16(h[22:], 1)
	le.PutUint32(h[24:], uint32(rate))
	le.PutUint32(h[28:], uint32(2*rate))
	le.PutUint16(h[32:], 2)
	le.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	le.PutUint32(h[40:], uint32(dataLen))
	if _, err := w.Write(h); err != nil {
		return fmt.Errorf("wav: write header: %w", err)
	}
	if _, err := w.Write(PCM16Bytes(samples)); err != nil {
		return fmt.Errorf("wav: write data: %w", err)
	}
	return nil
}

// Convert16kMono downmixes decoded channels at f.SampleRate and resamples them
// to 16 kHz mono, flushing the resampler: the whole-file counterpart of a
// ModeDownmix Pipeline.
func Convert16kMono(f Format, channels [][]float32) []float32 {
	mono := Downmix(channels)
	if f.SampleRate == TargetRate {
		return append([]float32(nil), mono...)
	}
	r := NewResampler(f.SampleRate, TargetRate)
	return append(r.Process(mono), r.Flush()...)
}
