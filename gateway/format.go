package gateway

import (
	"errors"
	"strconv"

	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/earshot-dev/earshot/ingest"
)

// ParseFormat is ingest.ParseFormat on a client's declared encoding, sample_rate (0:
// not given) and channels (0: not given), with an unsupported format reported as a
// *wire.ParamError naming the parameter at fault: "sample_rate" (ingest.ErrSampleRate),
// "channels" (ingest.ErrChannels) or else "encoding". The live and pre-recorded APIs
// judge declared formats with it.
func ParseFormat(encoding string, sampleRate, channels int) (ingest.Format, error) {
	rate, ch := "", ""
	if sampleRate > 0 {
		rate = strconv.Itoa(sampleRate)
	}
	if channels > 0 {
		ch = strconv.Itoa(channels)
	}
	f, err := ingest.ParseFormat(encoding, rate, ch)
	if err != nil {
		param := "encoding"
		switch {
		case errors.Is(err, ingest.ErrSampleRate):
			param = "sample_rate"
		case errors.Is(err, ingest.ErrChannels):
			param = "channels"
		}
		return ingest.Format{}, &wire.ParamError{Param: param, Reason: err.Error()}
	}
	return f, nil
}

// newPipeline builds a live stream's ingest pipeline for its declared format: one
// output per channel with multichannel=true, else the channels mixed down to one.
func newPipeline(p wire.Params) (*ingest.Pipeline, error) {
	f, err := ParseFormat(p.Encoding, p.SampleRate, p.Channels)
	if err != nil {
		return nil, err
	}
	mode := ingest.ModeDownmix
	if p.Multichannel {
		mode = ingest.ModePerChannel
	}
	return ingest.NewPipeline(f, mode)
}
