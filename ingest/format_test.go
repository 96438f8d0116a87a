package ingest

import (
	"errors"
	"strings"
	"testing"
)

func TestParseFormat(t *testing.T) {
	for _, tc := range []struct {
		enc, rate, ch string
		want          Format
		err           error
		msg           string // substring the user sees
	}{
		{"linear16", "16000", "1", Format{Linear16, 16000, 1}, nil, ""},
		{"LINEAR16", "44100", "", Format{Linear16, 44100, 1}, nil, ""},
		{"linear32", "48000", "2", Format{Float32, 48000, 2}, nil, ""},
		{"float32", "8000", "8", Format{Float32, 8000, 8}, nil, ""},
		{"mulaw", "", "", Format{Mulaw, 8000, 1}, nil, ""},
		{"alaw", "8000", "2", Format{Alaw, 8000, 2}, nil, ""},
		{"opus", "48000", "1", Format{}, ErrUnsupportedEncoding, "allowed: linear16, float32 (alias linear32), mulaw, alaw"},
		{"", "16000", "1", Format{}, ErrUnsupportedEncoding, "encoding \"\""},
		{"linear16", "", "1", Format{}, ErrSampleRate, "sample_rate is required"},
		{"linear16", "7999", "1", Format{}, ErrSampleRate, "allowed: 8000..48000"},
		{"linear16", "96000", "1", Format{}, ErrSampleRate, "sample_rate 96000"},
		{"linear16", "16k", "1", Format{}, ErrSampleRate, "not an integer"},
		{"mulaw", "16000", "1", Format{}, ErrSampleRate, "allowed: 8000)"},
		{"linear16", "16000", "0", Format{}, ErrChannels, "allowed: 1..8"},
		{"linear16", "16000", "9", Format{}, ErrChannels, "channels 9"},
		{"linear16", "16000", "two", Format{}, ErrChannels, "not an integer"},
	} {
		t.Run(tc.enc+"_"+tc.rate+"_"+tc.ch, func(t *testing.T) {
			f, err := ParseFormat(tc.enc, tc.rate, tc.ch)
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err != nil && !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
			if f != tc.want {
				t.Errorf("format = %+v, want %+v", f, tc.want)
			}
		})
	}
}

func TestBytesPerFrame(t *testing.T) {
	for f, want := range map[Format]int{
		{Linear16, 16000, 2}: 4, {Float32, 48000, 3}: 12, {Mulaw, 8000, 1}: 1, {Alaw, 8000, 8}: 8, {"x", 8000, 1}: 0,
	} {
		if got := f.BytesPerFrame(); got != want {
			t.Errorf("%v: %d bytes per frame, want %d", f, got, want)
		}
	}
}
