package bus

import (
	"bytes"
	"strings"
	"testing"
)

func TestAudioChunkRoundTrip(t *testing.T) {
	in := &AudioChunk{Session: NewSessionID(), Seq: 42, Channel: 1, StartSample: 16000 * 3,
		SentNs: 1234567890123, Flags: FlagFinalize | FlagReplay, PCM: []int16{0, 1, -1, 32767, -32768}}
	out, err := UnmarshalAudioChunk(in.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if out.Session != in.Session || out.Seq != 42 || out.Channel != 1 || out.StartSample != 48000 ||
		out.SentNs != in.SentNs || out.Flags != in.Flags || len(out.PCM) != 5 || out.PCM[4] != -32768 {
		t.Fatalf("round trip changed the chunk: %+v", out)
	}
	if out.EndSample() != 48005 {
		t.Fatalf("end %d", out.EndSample())
	}
}

func TestUnmarshalRejectsMalformed(t *testing.T) {
	good := (&AudioChunk{Session: "s", PCM: []int16{1, 2}}).Marshal()
	cases := map[string][]byte{
		"empty":        nil,
		"short header": good[:10],
		"bad version":  append([]byte{9}, good[1:]...),
		"odd pcm":      good[:len(good)-1],
		"sid too long": append(append([]byte{}, good[:28]...), 200, 'a'),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := UnmarshalAudioChunk(b); err == nil {
				t.Fatalf("accepted malformed chunk %x", b)
			}
		})
	}
}

func TestSubjectsCarryTenantAndRejectBadTokens(t *testing.T) {
	if got := AudioSubject("acme", "s1"); got != "earshot.audio.acme.s1" {
		t.Fatal(got)
	}
	if got := ResultSubject("acme", "s1"); !strings.HasPrefix(got, "earshot.results.acme.") {
		t.Fatal(got)
	}
	for _, bad := range []string{"", "a.b", "a*", ">", "a b", strings.Repeat("x", 129)} {
		if ValidToken(bad) {
			t.Errorf("ValidToken(%q) = true", bad)
		}
	}
	if !ValidToken(string(NewSessionID())) {
		t.Fatal("session id is not a valid token")
	}
}

func TestModelNamesWithDots(t *testing.T) {
	if !ValidModel("tiny.en") || ValidModel("tiny.*") || ValidModel("") {
		t.Fatal("ValidModel")
	}
	if got := SessionRequestSubject("large-v3.q5_0"); got != "earshot.session.request.large-v3_q5_0" {
		t.Fatal(got)
	}
}

func TestUsageEventIDDeterministic(t *testing.T) {
	a := UsageEventID("s", "", 2000, 2000)
	if a != "s:0:2000:4000" || UsageEventID("s", "inbound", -5, 5) != "s:inbound:-5:0" || a == UsageEventID("s", "", 2000, 3000) {
		t.Fatalf("%q", a)
	}
}

func FuzzUnmarshalAudioChunk(f *testing.F) {
	f.Add((&AudioChunk{Session: "abc", Seq: 1, PCM: []int16{1, -1}}).Marshal())
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := UnmarshalAudioChunk(b)
		if err != nil {
			return
		}
		again := c.Marshal()
		if !bytes.Equal(again[:chunkHeader-1], b[:chunkHeader-1]) && b[3] == 0 {
			t.Fatalf("re-marshal differs in header")
		}
	})
}
