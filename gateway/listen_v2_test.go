package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/lang"
	"github.com/gorilla/websocket"
)

// dialV2 opens a /v2/listen stream; on an HTTP refusal it returns the decoded body.
func (h *harness) dialV2(query string, hdr http.Header) (*websocket.Conn, *http.Response, wire.HTTPError, error) {
	h.t.Helper()
	return h.dialAt("/v2/listen", query, hdr)
}

func (h *harness) mustDialV2(query string) (*websocket.Conn, *http.Response) {
	h.t.Helper()
	return h.mustDialAt("/v2/listen", query)
}

func sendJSON(t *testing.T, c *websocket.Conn, v string) {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(v)); err != nil {
		t.Fatalf("send %s: %v", v, err)
	}
}

// readUntil reads messages until one of type typ (returned last) or the timeout.
func readUntil(t *testing.T, c *websocket.Conn, typ string, timeout time.Duration) []message {
	t.Helper()
	msgs, err := readMessages(c, timeout, typ)
	if err != nil {
		t.Fatalf("no %s: %v (read %d messages)", typ, err, len(msgs))
	}
	return msgs
}

// checkSequence asserts what an unmodified Flux client relies on: sequence_id counts
// every message from 0, and each carries the fields its schema requires.
func checkSequence(t *testing.T, msgs []message, reqID string) {
	t.Helper()
	required := map[string][]string{
		wire.TypeConnected: {"type", "request_id", "sequence_id"},
		wire.TypeTurnInfo: {"type", "request_id", "sequence_id", "event", "turn_index", "audio_window_start",
			"audio_window_end", "transcript", "words", "end_of_turn_confidence"},
		wire.TypeConfigureSuccess: {"type", "request_id", "sequence_id", "thresholds", "keyterms"},
		wire.TypeConfigureFailure: {"type", "request_id", "sequence_id"},
		wire.TypeError:            {"type", "sequence_id", "code", "description"},
	}
	for i, m := range msgs {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(m.Raw, &fields); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		req, ok := required[m.Type]
		if !ok {
			t.Fatalf("message %d is not a Flux message: %s", i, m.Raw)
		}
		for _, f := range req {
			if v, ok := fields[f]; !ok || string(v) == "null" {
				t.Fatalf("message %d lacks %s: %s", i, f, m.Raw)
			}
		}
		var seq int
		_ = json.Unmarshal(fields["sequence_id"], &seq)
		if seq != i {
			t.Fatalf("message %d has sequence_id %d: %s", i, seq, m.Raw)
		}
		if rid, ok := fields["request_id"]; ok && string(rid) != `"`+reqID+`"` {
			t.Fatalf("message %d request_id %s, want %s", i, rid, reqID)
		}
	}
}

// TestListenV2Turns drives a turn-taking stream against the stand-in worker: the
// client gets Connected, then TurnInfo events only (no Results, no Metadata), every
// turn from StartOfTurn to EndOfTurn with its trigger, ForceEndTurn ends the open turn,
// CloseStream ends the last one; the audio is billed as on /v1.
func TestListenV2Turns(t *testing.T) {
	h := newHarness(t, nil)
	c, resp := h.mustDialV2(pcmQuery + "&model=flux-general-en&eager_eot_threshold=0.5&mip_opt_out=true&keyterm=Earshot")
	reqID := resp.Header.Get("dg-request-id")
	sendAudio(t, c, tone(2.5)) // words 1-5: two turns end on the model's word, the third is open
	sendJSON(t, c, `{"type":"ForceEndTurn"}`)
	sendAudio(t, c, tone(0.5)) // word 6 opens a turn
	sendControl(t, c, wire.ControlCloseStream)
	msgs, ce := readAll(t, c, 5*time.Second)
	if ce == nil || ce.Code != wire.CloseNormal {
		t.Fatalf("close = %v, want 1000", ce)
	}
	checkSequence(t, msgs, reqID)
	if msgs[0].Type != wire.TypeConnected {
		t.Fatalf("first message %s, want Connected", msgs[0].Raw)
	}
	var events []string
	var ends []wire.TurnInfo
	for _, m := range msgs[1:] {
		if m.Type != wire.TypeTurnInfo {
			t.Fatalf("a %s message on /v2/listen: %s", m.Type, m.Raw)
		}
		ti := decode[wire.TurnInfo](t, m)
		events = append(events, ti.Event)
		if ti.Event == bus.TurnEnd {
			ends = append(ends, ti)
		} else if ti.Trigger != "" {
			t.Fatalf("trigger on %s: %s", ti.Event, m.Raw)
		}
	}
	turn := []string{bus.TurnStart, bus.TurnUpdate, bus.TurnUpdate, bus.TurnEager, bus.TurnEnd}
	want := append(append(append([]string{}, turn...), turn...), bus.TurnStart, bus.TurnUpdate, bus.TurnEnd,
		bus.TurnStart, bus.TurnUpdate, bus.TurnEnd)
	if !reflect.DeepEqual(events, want) {
		t.Fatalf("events\n%q\nwant\n%q", events, want)
	}
	var got []string
	for i, e := range ends {
		got = append(got, e.Transcript+"/"+e.Trigger)
		if e.TurnIndex != i {
			t.Fatalf("EndOfTurn %d has turn_index %d", i, e.TurnIndex)
		}
	}
	if w := []string{"w1 w2/model", "w3 w4/model", "w5/manual", "w6/close"}; !reflect.DeepEqual(got, w) {
		t.Fatalf("turns %q, want %q", got, w)
	}
	first := ends[0]
	if first.AudioWindowStart != 0 || first.AudioWindowEnd != 1 || first.EndOfTurnConfidence != 0.85 ||
		len(first.Words) != 2 || first.Words[0] != (wire.FluxWord{Word: "W1", Confidence: 0.9, Start: 0, End: 0.4}) {
		t.Fatalf("first EndOfTurn %+v", first)
	}
	if first.Languages != nil {
		t.Fatalf("languages on a stream that does not detect: %v", first.Languages)
	}

	req := h.backend.Opened()[0]
	if req.Model != "tiny.en" || req.Options.Language != "en" || req.Options.Turns == nil ||
		*req.Options.Turns != (bus.TurnOptions{EOTThreshold: 0.7, EagerEOTThreshold: 0.5, EOTTimeoutMs: 5000}) ||
		!reflect.DeepEqual(req.Options.Keyterms, []string{"Earshot"}) || req.Channels != 1 || string(req.Session) != reqID {
		t.Fatalf("session request %+v turns %+v", req, req.Options.Turns)
	}
	if flushes := h.checkBilled(reqID, 3); flushes < len(ends) {
		t.Fatalf("%d meter flushes for %d EndOfTurn messages", flushes, len(ends))
	}
}

// TestListenV2Configure: a valid Configure reaches the worker and is answered with
// every current value; a bad one (out of range, keyterms) gets ConfigureFailure and
// changes nothing; the stream carries on; a /v1 control message ends it with Error.
func TestListenV2Configure(t *testing.T) {
	h := newHarness(t, nil)
	c, resp := h.mustDialV2(pcmQuery + "&eot_threshold=0.8&keyterm=Kubernetes")
	reqID := resp.Header.Get("dg-request-id")
	var msgs []message
	sendJSON(t, c, `{"type":"Configure","thresholds":{"eot_threshold":0.9,"eager_eot_threshold":"0.4","eot_timeout_ms":3000}}`)
	msgs = append(msgs, readUntil(t, c, wire.TypeConfigureSuccess, 3*time.Second)...)
	ok := decode[wire.ConfigureSuccess](t, msgs[len(msgs)-1])
	if ok.Thresholds.EOTThreshold != 0.9 || ok.Thresholds.EagerEOTThreshold == nil || *ok.Thresholds.EagerEOTThreshold != 0.4 ||
		ok.Thresholds.EOTTimeoutMs != 3000 || !reflect.DeepEqual(ok.Keyterms, []string{"Kubernetes"}) {
		t.Fatalf("ConfigureSuccess %s", msgs[len(msgs)-1].Raw)
	}
	st := h.backend.Streams()[0]
	if got := st.Configures(); len(got) != 1 || got[0] != (bus.TurnOptions{EOTThreshold: 0.9, EagerEOTThreshold: 0.4, EOTTimeoutMs: 3000}) {
		t.Fatalf("worker configured with %+v", got)
	}
	for _, bad := range []struct{ msg, why string }{
		{`{"type":"Configure","thresholds":{"eot_threshold":0.2}}`, "eot_threshold"},
		{`{"type":"Configure","thresholds":{"eager_eot_threshold":0.95}}`, "eager_eot_threshold"},
		{`{"type":"Configure","thresholds":{"eot_timeout_ms":60001}}`, "eot_timeout_ms"},
		{`{"type":"Configure","keyterms":["Kafka"]}`, "keyterms"},
		{`{"type":"Configure","language_hints":["de"]}`, "language_hints"},
	} {
		sendJSON(t, c, bad.msg)
		msgs = append(msgs, readUntil(t, c, wire.TypeConfigureFailure, 3*time.Second)...)
		f := decode[wire.ConfigureFailure](t, msgs[len(msgs)-1])
		if !strings.Contains(f.Description, bad.why) {
			t.Fatalf("ConfigureFailure for %s does not say %s: %+v", bad.msg, bad.why, f)
		}
	}
	if got := st.Configures(); len(got) != 1 {
		t.Fatalf("a refused Configure reached the worker: %+v", got)
	}
	// An empty Configure answers the current values.
	sendJSON(t, c, `{"type":"Configure"}`)
	msgs = append(msgs, readUntil(t, c, wire.TypeConfigureSuccess, 3*time.Second)...)
	if cur := decode[wire.ConfigureSuccess](t, msgs[len(msgs)-1]); cur.Thresholds.EOTThreshold != 0.9 || cur.Thresholds.EOTTimeoutMs != 3000 {
		t.Fatalf("current values %s", msgs[len(msgs)-1].Raw)
	}
	sendAudio(t, c, tone(1))
	msgs = append(msgs, readUntil(t, c, wire.TypeTurnInfo, 3*time.Second)...)
	sendJSON(t, c, `{"type":"Finalize"}`) // /v1's: refused with Flux's (fatal) Error
	rest, ce := readAll(t, c, 5*time.Second)
	msgs = append(msgs, rest...)
	if ce == nil || ce.Code != wire.CloseBadRequest {
		t.Fatalf("close %v, want 4000", ce)
	}
	last := msgs[len(msgs)-1]
	e := decode[wire.FluxError](t, last)
	if e.Type != wire.TypeError || e.Code != wire.CodeUnknownMessage || !strings.Contains(e.Description, "ForceEndTurn") {
		t.Fatalf("last message %s", last.Raw)
	}
	checkSequence(t, msgs, reqID)
}

// TestListenV2ConfigureFlood: Configure messages reach the worker over NATS and are
// logged, so a client flooding them gets ConfigureFailure past a burst of 10 and 5 a
// second, and the worker hears no more than that.
func TestListenV2ConfigureFlood(t *testing.T) {
	h := newHarness(t, nil)
	c, _ := h.mustDialV2(pcmQuery)
	start := time.Now()
	const n = 40
	for i := range n {
		sendJSON(t, c, fmt.Sprintf(`{"type":"Configure","thresholds":{"eot_threshold":%v}}`, 0.8+0.1*float64(i%2)))
	}
	ok, refused := 0, 0
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for ok+refused < n {
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("after %d answers: %v", ok+refused, err)
		}
		var m struct{ Type, Description string }
		_ = json.Unmarshal(b, &m)
		switch m.Type {
		case wire.TypeConfigureSuccess:
			ok++
		case wire.TypeConfigureFailure:
			refused++
			if !strings.Contains(m.Description, "too many Configure") {
				t.Fatalf("ConfigureFailure %s", b)
			}
		}
	}
	allowed := configureBurst + int(time.Since(start).Seconds()*configureRate) + 1
	if ok > allowed || refused == 0 {
		t.Fatalf("%d Configure answered with success and %d refused in %v, want at most %d successes", ok, refused, time.Since(start), allowed)
	}
	if got := len(h.backend.Streams()[0].Configures()); got > ok {
		t.Fatalf("the worker was configured %d times for %d accepted Configure messages", got, ok)
	}
}

// TestListenV2Refusals: what /v2/listen cannot do is refused before the upgrade with
// 400 naming the parameter, never ignored.
func TestListenV2Refusals(t *testing.T) {
	h := newHarness(t, nil)
	cases := []struct {
		name, query string
		code        wire.ErrorCode
		param       string
	}{
		{"eot_threshold low", pcmQuery + "&eot_threshold=0.4", wire.CodeBadRequest, "eot_threshold"},
		{"eot_threshold text", pcmQuery + "&eot_threshold=high", wire.CodeBadRequest, "eot_threshold"},
		{"eager high", pcmQuery + "&eager_eot_threshold=0.95", wire.CodeBadRequest, "eager_eot_threshold"},
		{"eager above eot", pcmQuery + "&eot_threshold=0.6&eager_eot_threshold=0.7", wire.CodeBadRequest, "eager_eot_threshold"},
		{"eot_timeout_ms", pcmQuery + "&eot_timeout_ms=100", wire.CodeBadRequest, "eot_timeout_ms"},
		{"tag", pcmQuery + "&tag=billing", wire.CodeBadRequest, "tag"},
		{"channels", pcmQuery + "&channels=2", wire.CodeBadRequest, "channels"},
		{"interim_results", pcmQuery + "&interim_results=true", wire.CodeBadRequest, "interim_results"},
		{"unknown", pcmQuery + "&smart_turns=true", wire.CodeBadRequest, "smart_turns"},
		{"multi among hints", pcmQuery + "&language_hint=en&language_hint=multi", wire.CodeBadRequest, "language_hint"},
		{"hint on flux-general-en", pcmQuery + "&model=flux-general-en&language_hint=de", wire.CodeBadRequest, "language_hint"},
		{"profanity_filter", pcmQuery + "&profanity_filter=true", wire.CodeBadRequest, "profanity_filter"},
		{"aggressive_numbers", pcmQuery + "&redact=aggressive_numbers", wire.CodeBadRequest, "redact"},
		{"no multilingual model", pcmQuery + "&model=flux-general-multi", wire.CodeUnknownModel, "model"},
		{"unknown model", pcmQuery + "&model=flux-general-xx", wire.CodeUnknownModel, "model"},
		{"encoding missing", "sample_rate=16000", wire.CodeBadRequest, "encoding"},
		{"encoding unsupported", "encoding=opus&sample_rate=16000", wire.CodeBadRequest, "encoding"},
		{"resume_turn_index without resume", pcmQuery + "&resume_turn_index=2", wire.CodeBadRequest, "resume_turn_index"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, resp, he, err := h.dialV2(c.query, h.keyHeader())
			if err == nil || resp == nil || resp.StatusCode != 400 || he.Code != c.code || he.Param != c.param {
				t.Fatalf("got %v %+v, want 400 %s param %q", resp, he, c.code, c.param)
			}
			if !strings.Contains(he.Message, c.param) {
				t.Fatalf("message %q does not name %s", he.Message, c.param)
			}
		})
	}
	// A plain GET (a browser's probe) runs the same checks.
	req, _ := http.NewRequest(http.MethodGet, h.ts.URL+"/v2/listen?"+pcmQuery+"&eot_threshold=0.8", nil)
	req.Header = h.keyHeader()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var he wire.HTTPError
	_ = decodeJSON(resp, &he)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired || !strings.Contains(he.Message, "/v2/listen") {
		t.Fatalf("probe: %d %+v", resp.StatusCode, he)
	}
	if n := len(h.backend.Opened()); n != 0 {
		t.Fatalf("%d streams opened by refused requests", n)
	}
}

// TestListenV2SameAdmissionAsV1: credentials, balance, plan and the tenant's stream
// limit refuse /v2/listen exactly as /v1/listen, and /v2 streams count towards the
// limit /v1 streams share.
func TestListenV2SameAdmissionAsV1(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxStreamsPerTenant = 1 })
	h.quota.notPlan = map[string]bool{"base.en": true}
	cases := []struct {
		name  string
		query string
		hdr   http.Header
		setup func()
	}{
		{"no credentials", pcmQuery, http.Header{}, nil},
		{"unknown key", pcmQuery, http.Header{"Authorization": {"Token nope"}}, nil},
		{"model not in plan", pcmQuery + "&model=base.en", h.keyHeader(), nil},
		{"no balance", pcmQuery, h.keyHeader(), func() { h.quota.set(ErrNoBalance) }},
		{"quota", pcmQuery, h.keyHeader(), func() { h.quota.set(errors.Join(errors.New("minutes"), ErrQuotaExhausted)) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.setup != nil {
				c.setup()
			}
			_, r1, e1, err1 := h.dial(c.query, c.hdr)
			_, r2, e2, err2 := h.dialV2(c.query, c.hdr)
			if err1 == nil || err2 == nil || r1 == nil || r2 == nil {
				t.Fatalf("not refused: v1 %v, v2 %v", err1, err2)
			}
			if r1.StatusCode != r2.StatusCode || e1.Code != e2.Code || e1.Message != e2.Message || r1.StatusCode < 400 {
				t.Fatalf("v1 %d %+v, v2 %d %+v", r1.StatusCode, e1, r2.StatusCode, e2)
			}
		})
	}
	h.quota.set(nil)

	c2, _ := h.mustDialV2(pcmQuery)
	for _, dial := range []func(string, http.Header) (*websocket.Conn, *http.Response, wire.HTTPError, error){h.dial, h.dialV2} {
		_, resp, he, _ := dial(pcmQuery, h.keyHeader())
		if resp == nil || resp.StatusCode != 429 || he.Code != wire.CodeTooManyStreams {
			t.Fatalf("a second stream beside a /v2 one: %v %+v", resp, he)
		}
	}
	h.endStream(t, c2)
	c1, _ := h.mustDial(pcmQuery)
	c1.Close()
}

// TestListenV2Multilingual: flux-general-multi is the configured multilingual model,
// detecting the language without language_hint (languages on every TurnInfo) and
// decoding the hinted one with it (languages_hinted).
func TestListenV2Multilingual(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MultilingualModel = "base.en" })
	c, _ := h.mustDialV2(pcmQuery + "&model=flux-general-multi")
	sendAudio(t, c, tone(1))
	sendControl(t, c, wire.ControlCloseStream)
	msgs, _ := readAll(t, c, 5*time.Second)
	tis := only(msgs, wire.TypeTurnInfo)
	if len(tis) == 0 {
		t.Fatal("no TurnInfo")
	}
	if ti := decode[wire.TurnInfo](t, tis[0]); !reflect.DeepEqual(ti.Languages, []string{"en"}) || ti.LanguagesHinted != nil {
		t.Fatalf("TurnInfo %s", tis[0].Raw)
	}
	if req := h.backend.Opened()[0]; req.Model != "base.en" || req.Options.Language != lang.Multi {
		t.Fatalf("request model %s language %q", req.Model, req.Options.Language)
	}

	c, _ = h.mustDialV2(pcmQuery + "&model=flux-general-multi&language_hint=de")
	sendAudio(t, c, tone(1))
	sendControl(t, c, wire.ControlCloseStream)
	msgs, _ = readAll(t, c, 5*time.Second)
	tis = only(msgs, wire.TypeTurnInfo)
	if ti := decode[wire.TurnInfo](t, tis[0]); ti.Languages != nil || !reflect.DeepEqual(ti.LanguagesHinted, []string{"de"}) {
		t.Fatalf("TurnInfo %s", tis[0].Raw)
	}
	if req := h.backend.Opened()[1]; req.Options.Language != "de" {
		t.Fatalf("hinted request language %q", req.Options.Language)
	}

	// An Earshot model name: a multilingual one detects without a hint, as
	// flux-general-multi does; several hints restrict detection to them; an
	// English-only one decodes English.
	for i, c := range []struct{ query, want string }{
		{"&model=base", lang.Multi},
		{"&model=base&language_hint=zh-CN&language_hint=en", "zh-CN,en"},
		{"&model=tiny.en", ""}, // "": English
	} {
		conn, _ := h.mustDialV2(pcmQuery + c.query)
		sendControl(t, conn, wire.ControlCloseStream)
		readAll(t, conn, 5*time.Second)
		if req := h.backend.Opened()[2+i]; req.Options.Language != c.want {
			t.Errorf("%s: request language %q, want %q", c.query, req.Options.Language, c.want)
		}
	}
}

// TestListenV2WorkerError: a transcriber failure reaches the client as Flux's Error
// (sequenced, the last message) and the close code /v1 uses.
func TestListenV2WorkerError(t *testing.T) {
	h := newHarness(t, nil)
	h.backend.FailWith = bus.CodeOverloaded
	c, resp := h.mustDialV2(pcmQuery)
	sendAudio(t, c, tone(0.5))
	msgs, ce := readAll(t, c, 5*time.Second)
	if ce == nil || ce.Code != wire.CloseTryAgainLater {
		t.Fatalf("close %v, want 1013", ce)
	}
	checkSequence(t, msgs, resp.Header.Get("dg-request-id"))
	if e := decode[wire.FluxError](t, msgs[len(msgs)-1]); e.Type != wire.TypeError || e.Code != wire.CodeNoCapacity {
		t.Fatalf("last message %s", msgs[len(msgs)-1].Raw)
	}
}

// TestFluxTurnNumbering: a worker that takes over after a failover counts turns from 0
// again; the client's turn_index keeps growing and an open turn is not started twice.
func TestFluxTurnNumbering(t *testing.T) {
	type ev struct {
		event string
		w     int
		idx   int
		drop  bool
	}
	cases := map[string][]ev{
		"one worker": {{bus.TurnStart, 0, 0, false}, {bus.TurnEnd, 0, 0, false}, {bus.TurnStart, 1, 1, false},
			{bus.TurnUpdate, 1, 1, false}, {bus.TurnEnd, 1, 1, false}},
		"failover between turns": {{bus.TurnStart, 0, 0, false}, {bus.TurnEnd, 0, 0, false},
			{bus.TurnStart, 0, 1, false}, {bus.TurnEnd, 0, 1, false}, {bus.TurnStart, 1, 2, false}},
		"failover inside turn 0": {{bus.TurnStart, 0, 0, false}, {bus.TurnUpdate, 0, 0, false},
			{bus.TurnStart, 0, 0, true}, {bus.TurnUpdate, 0, 0, false}, {bus.TurnEnd, 0, 0, false}, {bus.TurnStart, 1, 1, false}},
		"failover inside turn 2": {{bus.TurnStart, 0, 0, false}, {bus.TurnEnd, 0, 0, false}, {bus.TurnStart, 1, 1, false},
			{bus.TurnEnd, 1, 1, false}, {bus.TurnStart, 2, 2, false}, {bus.TurnStart, 0, 2, true},
			{bus.TurnEager, 0, 2, false}, {bus.TurnEnd, 0, 2, false}, {bus.TurnStart, 1, 3, false}},
	}
	// A connection resumed with resume_turn_index=3 (the client saw turns 0–2 end)
	// counts from there, through a failover too.
	cases["resumed at turn 3"] = []ev{{bus.TurnStart, 0, 3, false}, {bus.TurnStart, 0, 3, true},
		{bus.TurnEnd, 0, 3, false}, {bus.TurnStart, 1, 4, false}, {bus.TurnEnd, 1, 4, false}}
	for name, evs := range cases {
		t.Run(name, func(t *testing.T) {
			var f fluxState
			if strings.HasPrefix(name, "resumed") {
				f = *newFluxState(wire.FluxParams{ResumeTurnIndex: 3}, false)
			}
			for i, e := range evs {
				idx, drop := f.clientTurn(e.event, e.w)
				if idx != e.idx || drop != e.drop {
					t.Fatalf("event %d %s w%d: index %d drop %v, want %d %v", i, e.event, e.w, idx, drop, e.idx, e.drop)
				}
			}
		})
	}
}
