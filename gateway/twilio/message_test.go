package twilio

import (
	"encoding/base64"
	"errors"
	"testing"
)

func TestParseMessage(t *testing.T) {
	payload := base64.StdEncoding.EncodeToString(frame(3))
	cases := []struct {
		name, in string
		ok       bool
	}{
		{"connected", `{"event":"connected","protocol":"Call","version":"1.0.0"}`, true},
		{"start", `{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound","outbound"],"customParameters":{"secret":"x"},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":"MZ1"}`, true},
		{"start without callSid", `{"event":"start","start":{"streamSid":"MZ1"}}`, false},
		{"start with bad track", `{"event":"start","start":{"callSid":"CA1","tracks":["both"]}}`, false},
		{"media", `{"event":"media","media":{"track":"outbound","chunk":"7","timestamp":"120","payload":"` + payload + `"}}`, true},
		{"media chunk 0", `{"event":"media","media":{"track":"inbound","chunk":"0","payload":"` + payload + `"}}`, false},
		{"media chunk not a number", `{"event":"media","media":{"track":"inbound","chunk":"x","payload":"` + payload + `"}}`, false},
		{"media unknown track", `{"event":"media","media":{"track":"side","chunk":"1","payload":"` + payload + `"}}`, false},
		{"media without media", `{"event":"media"}`, false},
		{"dtmf", `{"event":"dtmf","dtmf":{"track":"inbound_track","digit":"5"}}`, true},
		{"dtmf without digit", `{"event":"dtmf","dtmf":{}}`, false},
		{"mark", `{"event":"mark","mark":{"name":"x"}}`, true},
		{"stop", `{"event":"stop","stop":{"accountSid":"AC1","callSid":"CA1"}}`, true},
		{"unknown", `{"event":"future"}`, true},
		{"no event", `{}`, false},
		{"array", `[]`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := ParseMessage([]byte(c.in))
			if c.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, c.ok)
			}
			if err != nil && !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			if c.name == "media" && (m.Decoded().Chunk != 7 || len(m.Decoded().Audio) != 160 || m.Decoded().TimestampMs != 120) {
				t.Fatalf("decoded %+v", m.Decoded())
			}
		})
	}
}

func FuzzParseTwilioMessage(f *testing.F) {
	// Seeds are also committed under testdata/fuzz/FuzzParseTwilioMessage.
	f.Add([]byte(`{"event":"media","media":{"track":"inbound","chunk":"1","timestamp":"0","payload":"AAAA"}}`))
	f.Add([]byte(`{"event":"start","start":{"callSid":"CA1","tracks":["inbound_track"]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMessage(b)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			return
		}
		switch m.Event {
		case EventMedia:
			d := m.Decoded()
			if d.Chunk == 0 || len(d.Audio) == 0 || len(d.Audio)%FrameBytes != 0 || (d.Track != TrackInbound && d.Track != TrackOutbound) {
				t.Fatalf("accepted bad media %+v", d)
			}
		case EventStart:
			if m.Start.CallSID == "" || len(m.Start.Tracks) == 0 {
				t.Fatalf("accepted bad start %+v", m.Start)
			}
		}
		// Reordering whatever was accepted must not panic or allocate without bound.
		if m.Event == EventMedia {
			r := newReorder(10)
			if _, err := r.Add(m.Decoded().Chunk, m.Decoded().Audio, 0); err == nil {
				r.Flush(0)
			}
		}
	})
}
