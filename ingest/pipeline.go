package ingest

import "fmt"

// TargetRate is the sample rate every stage after ingest consumes.
const TargetRate = 16000

// ChannelMode says what a Pipeline does with multi-channel audio.
type ChannelMode int

const (
	// ModeDownmix averages all channels into one output channel.
	ModeDownmix ChannelMode = iota
	// ModePerChannel keeps every channel as its own output (one transcript per channel).
	ModePerChannel
)

// Pipeline converts one live stream's raw chunks to 16 kHz float32 output
// channels and counts the audio it accepted. Not safe for concurrent use.
type Pipeline struct {
	dec      *Decoder
	mode     ChannelMode
	rs       []*Resampler // one per output channel
	accepted int64        // source sample frames accepted
}

// NewPipeline validates f and returns a pipeline for it.
func NewPipeline(f Format, mode ChannelMode) (*Pipeline, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	outs := 1
	switch mode {
	case ModeDownmix:
	case ModePerChannel:
		outs = f.Channels
	default:
		return nil, fmt.Errorf("channel mode %d: %w", mode, ErrChannelMode)
	}
	p := &Pipeline{dec: NewDecoder(f), mode: mode, rs: make([]*Resampler, outs)}
	for i := range p.rs {
		p.rs[i] = NewResampler(f.SampleRate, TargetRate)
	}
	return p, nil
}

// Format is the stream's source format.
func (p *Pipeline) Format() Format { return p.dec.Format() }

// Outputs is the number of output channels: 1 for ModeDownmix, Channels for ModePerChannel.
func (p *Pipeline) Outputs() int { return len(p.rs) }

// Push decodes one chunk and returns the 16 kHz samples now ready, one slice
// per output channel (slices may be empty while the resampler fills). A chunk
// that fails to decode is rejected whole: nothing of it is counted or output.
func (p *Pipeline) Push(b []byte) ([][]float32, error) {
	chans, err := p.dec.Decode(b)
	if err != nil {
		return nil, err
	}
	if len(chans) > 0 {
		p.accepted += int64(len(chans[0]))
	}
	if p.mode == ModeDownmix {
		chans = [][]float32{Downmix(chans)}
	}
	out := make([][]float32, len(p.rs))
	for i, r := range p.rs {
		out[i] = r.Process(chans[i])
	}
	return out, nil
}

// Flush returns the audio still held in the resamplers; call it once at the
// end of the stream. The pipeline can then take a new stream, and the counts
// continue.
func (p *Pipeline) Flush() [][]float32 {
	out := make([][]float32, len(p.rs))
	for i, r := range p.rs {
		out[i] = r.Flush()
	}
	return out
}

// AcceptedSamples is the number of source sample frames accepted so far (a
// frame holds one sample of every channel).
func (p *Pipeline) AcceptedSamples() int64 { return p.accepted }

// AcceptedMs is the accepted audio's duration in whole milliseconds, computed
// from the sample count at the source rate (floor(samples·1000/rate)), so it
// never drifts however the audio was chunked.
func (p *Pipeline) AcceptedMs() int64 {
	return p.accepted * 1000 / int64(p.dec.Format().SampleRate)
}
