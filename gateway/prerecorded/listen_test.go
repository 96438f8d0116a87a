package prerecorded

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/earshot-dev/earshot/ingest"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/wer"
)

func TestJFKRealEngineJSONAndVTT(t *testing.T) {
	r := newRig(t, nil, nil)
	wav, ref := jfk(t)
	resp, body := r.post(t, "acme", "model=tiny.en", "audio/wav", "", wav)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s\nlogs:\n%s", resp.StatusCode, body, r.logs)
	}
	var got Response
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if w, _, _ := wer.WER(ref, got.Transcript()); w > 0.10 {
		t.Fatalf("WER %.2f > 10%%:\n ref %q\n hyp %q", w, ref, got.Transcript())
	}
	md := got.Metadata
	sum := sha256.Sum256(wav)
	if md.RequestID == "" || md.RequestID != resp.Header.Get("dg-request-id") || md.SHA256 != hex.EncodeToString(sum[:]) ||
		md.Duration < 10.9 || md.Duration > 11.1 || md.Channels != 1 || len(md.Models) != 1 || md.Created == "" {
		t.Fatalf("metadata %+v", md)
	}
	words := got.Results.Channels[0].Alternatives[0].Words
	if len(words) < 15 {
		t.Fatalf("only %d words", len(words))
	}
	for i, w := range words {
		if w.End < w.Start || w.End > md.Duration+0.5 || i > 0 && w.Start < words[i-1].Start || w.PunctuatedWord == "" {
			t.Fatalf("word %d has bad timing or text: %+v", i, w)
		}
	}
	if ms := r.meter.get(bus.SessionID(md.RequestID)); ms < 10900 || ms > 11100 {
		t.Fatalf("metered %d ms for 11 s of audio", ms)
	}

	resp, body = r.post(t, "acme", "", "audio/wav", "text/vtt", wav)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/vtt") {
		t.Fatalf("vtt: status %d, %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	checkVTT(t, string(body))
	if !strings.Contains(strings.ToLower(string(body)), "country") {
		t.Fatalf("vtt lacks the words:\n%s", body)
	}
}

var cueTiming = regexp.MustCompile(`^(\d{2}):(\d{2}):(\d{2})\.(\d{3}) --> (\d{2}):(\d{2}):(\d{2})\.(\d{3})$`)

// checkVTT checks the WebVTT header and that every cue has an id, a timing line with
// start ≤ end, and text.
func checkVTT(t *testing.T, doc string) {
	t.Helper()
	if !strings.HasPrefix(doc, "WEBVTT\n\n") {
		t.Fatalf("no WEBVTT header:\n%s", doc)
	}
	blocks := strings.Split(strings.TrimSpace(strings.TrimPrefix(doc, "WEBVTT\n\n")), "\n\n")
	if len(blocks) == 0 || blocks[0] == "" {
		t.Fatalf("no cues:\n%s", doc)
	}
	for _, b := range blocks {
		lines := strings.Split(b, "\n")
		if len(lines) < 3 || !cueTiming.MatchString(lines[1]) || strings.TrimSpace(lines[2]) == "" {
			t.Fatalf("bad cue %q", b)
		}
		parts := strings.Split(lines[1], " --> ")
		if parts[0] > parts[1] {
			t.Fatalf("cue ends before it starts: %q", lines[1])
		}
		if len(lines[2]) > cueMaxChars {
			t.Fatalf("cue text longer than %d: %q", cueMaxChars, lines[2])
		}
	}
}

func TestCaptionsFromWords(t *testing.T) {
	var finals []bus.Result
	for i, text := range []string{"one two three four five six seven eight nine ten eleven twelve thirteen", "Next line."} {
		var ws []bus.Word
		for k, f := range strings.Fields(text) {
			st := float64(i)*10 + float64(k)*0.6
			ws = append(ws, bus.Word{Word: f, Punctuated: f, Start: st, End: st + 0.5})
		}
		finals = append(finals, bus.Result{Type: bus.ResultFinal, Start: float64(i) * 10, Text: text, Words: ws})
	}
	resp := &Response{Results: Results{Channels: []wire.Channel{{Alternatives: []wire.Alternative{assemble(finals)}}}}}
	vtt := resp.WebVTT()
	checkVTT(t, vtt)
	if !strings.Contains(vtt, "1\n00:00:00.000 --> ") || !strings.Contains(vtt, "00:00:10.000 --> 00:00:11.100\nNext line.") {
		t.Fatalf("vtt:\n%s", vtt)
	}
	for _, c := range cues(resp.words()) {
		if c.end-c.start > cueMaxSeconds || len(c.text) > cueMaxChars {
			t.Fatalf("cue too long: %+v", c)
		}
	}
	srt := resp.SRT()
	if !strings.HasPrefix(srt, "1\n00:00:00,000 --> ") || strings.Contains(srt, "WEBVTT") {
		t.Fatalf("srt:\n%s", srt)
	}
}

func TestBadInputs(t *testing.T) {
	r := newRig(t, fakeBackend{texts: []string{"hello"}}, func(c *Config) {
		c.MaxUpload = 64 << 10
		c.URLAllowList = []string{"127.0.0.1", "169.254.169.254", "localhost"}
	})
	wav := wavOf(t, tone(1))
	cases := []struct {
		name, query, ctype string
		body               []byte
		status             int
		want               string
	}{
		{"too large", "", "audio/wav", wavOf(t, tone(3)), 413, "limit is 0 MiB (65536 bytes)"},
		{"not audio", "", "text/plain", []byte("hello, this is not audio"), 400, "not a WAV file"},
		{"broken wav", "", "audio/wav", append([]byte("RIFF\x00\x00\x00\x00WAVE"), make([]byte, 20)...), 400, "does not decode"},
		{"unknown redaction", "redact=ssn", "audio/wav", wav, 400, "is not a redaction name: use pci"},
		{"bad retain", "retain=forever", "audio/wav", wav, 400, "retain"},
		{"ssrf loopback", "", "application/json", []byte(`{"url":"http://127.0.0.1:9/a.wav"}`), 400, "loopback"},
		{"ssrf metadata", "", "application/json", []byte(`{"url":"http://169.254.169.254/latest/meta-data"}`), 400, "link-local"},
		{"ssrf localhost name", "", "application/json", []byte(`{"url":"http://localhost:9/a.wav"}`), 400, "loopback"},
		{"not allow-listed", "", "application/json", []byte(`{"url":"https://example.com/a.wav"}`), 400, "not in the URL allow-list"},
		{"bad json", "", "application/json", []byte(`{"uri":"x"}`), 400, "url"},
		{"callback to loopback", "callback=http://127.0.0.1:1/cb", "audio/wav", wav, 400, "loopback"},
		{"callback not http", "callback=file:///etc/passwd", "audio/wav", wav, 400, "callback"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := r.post(t, "acme", c.query, c.ctype, "", c.body)
			if resp.StatusCode != c.status || !strings.Contains(string(body), c.want) {
				t.Fatalf("status %d body %s; want %d containing %q", resp.StatusCode, body, c.status, c.want)
			}
		})
	}
	resp, _ := r.post(t, "", "", "audio/wav", "", wav)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no credentials: %d", resp.StatusCode)
	}
}

func TestRawFormatsAndURLFetch(t *testing.T) {
	samples := tone(1)
	lin := ingest.PCM16Bytes(samples)
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "http://169.254.169.254/x", http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "audio/wav")
		_, _ = w.Write(wavOf(t, samples))
	}))
	defer files.Close()
	r := newRig(t, fakeBackend{texts: []string{"Hello there."}}, func(c *Config) {
		c.AllowLoopback = true
		c.URLAllowList = []string{"127.0.0.1"}
	})
	for _, c := range []struct {
		name, query, ctype string
		body               []byte
	}{
		{"linear16", "encoding=linear16&sample_rate=16000", "application/octet-stream", lin},
		{"mulaw 8k", "encoding=mulaw&sample_rate=8000", "", ingest.EncodeMulaw(tone8k(1))},
		{"url", "", "application/json", []byte(`{"url":"` + files.URL + `/a.wav"}`)},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := r.post(t, "acme", c.query, c.ctype, "", c.body)
			var got Response
			if resp.StatusCode != 200 || json.Unmarshal(body, &got) != nil || got.Transcript() != "Hello there." {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if got.Metadata.Duration < 0.95 || got.Metadata.Duration > 1.05 {
				t.Fatalf("duration %v", got.Metadata.Duration)
			}
		})
	}
	resp, body := r.post(t, "acme", "", "application/json", "", []byte(`{"url":"`+files.URL+`/redirect"}`))
	if resp.StatusCode != 400 || !strings.Contains(string(body), "not in the URL allow-list") {
		t.Fatalf("redirect to metadata address: %d %s", resp.StatusCode, body)
	}
}

func TestRedactionInResults(t *testing.T) {
	r := newRig(t, fakeBackend{texts: []string{
		"My card is four one one one one one one one one one one one one one one one.",
		"Mail john dot smith at example dot com please.",
	}}, nil)
	resp, body := r.post(t, "acme", "redact=pci&redact=email", "audio/wav", "", wavOf(t, tone(2)))
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var got Response
	_ = json.Unmarshal(body, &got)
	want := "My card is [REDACTED_PCI]. Mail [REDACTED_EMAIL] please."
	if got.Transcript() != want {
		t.Fatalf("transcript %q, want %q", got.Transcript(), want)
	}
	for _, secret := range []string{"four", "john", "smith", "example"} {
		if strings.Contains(strings.ToLower(string(body)), secret) {
			t.Fatalf("%q left in the response: %s", secret, body)
		}
	}
}

func FuzzParseListenParams(f *testing.F) {
	f.Add("model=tiny.en&callback=https://example.com/cb&retain=transcript&retain_ttl=1h&redact=pci,email")
	f.Add("encoding=mulaw&sample_rate=8000&channels=2&redact=true&retain=none")
	f.Add("callback=http://[::1]:80/x&retain_ttl=5m")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		p, err := ParseListenParams(q, nil)
		if err != nil {
			return
		}
		if p.Callback != "" {
			u, err := url.Parse(p.Callback)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
				t.Fatalf("accepted callback %q", p.Callback)
			}
		}
		if p.Retain.Keeps() && (p.Retain.TTL <= 0 || !p.RetainSet) {
			t.Fatalf("retention without a TTL: %+v", p.Retain)
		}
	})
}

func tone8k(sec float64) []float32 {
	t := tone(sec)
	out := make([]float32, len(t)/2)
	for i := range out {
		out[i] = t[2*i]
	}
	return out
}

// A file that opens with more silence than the gateway's replay limit (120 s) holds
// no final for that long: transcribe settles it with Finalize instead of failing with
// a full replay buffer, and the speech after it is transcribed and billed in full.
func TestLongSilenceBeforeSpeech(t *testing.T) {
	r := newRig(t, nil, func(c *Config) { c.Speed = 40 })
	wav, ref := jfk(t)
	f, ch, err := ingest.ReadWAV(bytes.NewReader(wav))
	if err != nil {
		t.Fatal(err)
	}
	pcm := append(make([]float32, 150*16000), ingest.Convert16kMono(f, ch)...)
	var b bytes.Buffer
	if err := ingest.WriteWAV16(&b, 16000, pcm); err != nil {
		t.Fatal(err)
	}
	resp, body := r.post(t, "acme", "model=tiny.en", "audio/wav", "", b.Bytes())
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s\nlogs:\n%s", resp.StatusCode, body, r.logs)
	}
	var got Response
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if w, _, _ := wer.WER(ref, got.Transcript()); w > 0.10 {
		t.Fatalf("WER %.2f after 150 s of silence:\n ref %q\n hyp %q", w, ref, got.Transcript())
	}
	words := got.Results.Channels[0].Alternatives[0].Words
	if len(words) == 0 || words[0].Start < 149 {
		t.Fatalf("first word at %+v, want after the 150 s of silence", words)
	}
	want := int64(len(pcm)) / 16
	if ms := r.meter.get(bus.SessionID(got.Metadata.RequestID)); ms != want {
		t.Fatalf("metered %d ms, want %d", ms, want)
	}
}

// A request refused before its body is read (here: bad credentials) still gets its
// answer when the client goes on uploading for a while, as a client that writes its
// whole body before reading does: the server reads and drops the rest of the body for a
// bounded time instead of closing under the writer, which reset the connection and
// lost the 401.
func TestRefusedUploadGetsItsAnswer(t *testing.T) {
	r := newRig(t, nil, func(c *Config) { c.MaxUpload = 8 << 20 })
	const size = 2 << 20
	c, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v1/listen HTTP/1.1\r\nHost: earshot\r\nAuthorization: Token not a tenant!\r\n"+
		"Content-Type: audio/wav\r\nContent-Length: %d\r\n\r\n", size)
	// The body over about 1.3 s (past the server's 0.5 s lingering close), then read.
	chunk := make([]byte, 64<<10)
	for sent := 0; sent < size; sent += len(chunk) {
		if _, err := c.Write(chunk); err != nil {
			t.Fatalf("upload cut after %d bytes: %v (the answer is lost with the connection)", sent, err)
		}
		time.Sleep(40 * time.Millisecond)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	status, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.Contains(status, " 401 ") {
		t.Fatalf("status line %q, %v; want the 401", status, err)
	}
}
