// Unit tests of the SDK's connection logic against a DETERMINISTIC FAKE server
// (not Earshot): it speaks the Deepgram live protocol over `ws` and "recognises"
// audio whose sample values encode the quarter-second they belong to (value i =
// word "qi"), so a transcript shows exactly which audio was delivered, and how often.
// The real-server tests are in live.test.mjs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import WebSocket, { WebSocketServer } from "ws";
import { connect, joinText, listenURL } from "../dist/index.js";

const RATE = 16000;

function fakeServer({ reject } = {}) {
  const http = createServer();
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (ps) => [...ps][0] });
  const state = { connections: 0, tokens: [], sockets: [], queries: [], received: [] };
  http.on("upgrade", (req, sock, head) => {
    state.queries.push(new URL(req.url, "http://x").searchParams);
    const tok = (req.headers["sec-websocket-protocol"] || "").split(",").map((s) => s.trim())[1];
    state.tokens.push(tok);
    const r = reject?.(state.connections);
    if (r) {
      const body = JSON.stringify({ err_code: r.code, err_msg: r.msg });
      sock.end(`HTTP/1.1 ${r.status} X\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
      return;
    }
    state.connections++;
    wss.handleUpgrade(req, sock, head, (ws) => session(ws));
  });
  function session(ws) {
    state.sockets.push(ws);
    const samples = [];
    state.received.push(samples);
    let done = 0; // samples finalized
    let lastPartial = 0;
    const words = (from, to) => {
      const out = [];
      for (let i = from; i < to;) {
        let j = i;
        while (j < to && samples[j] === samples[i]) j++;
        out.push({ word: "q" + samples[i], start: i / RATE, end: j / RATE, confidence: 1, complete: j < samples.length });
        i = j;
      }
      return out;
    };
    const results = (ws2, ws_, isFinal, fromFinalize = false) => {
      const w = ws_.map(({ complete, ...x }) => x);
      const start = done / RATE;
      const end = w.length ? w[w.length - 1].end : start;
      ws2.send(JSON.stringify({ type: "Results", is_final: isFinal, speech_final: isFinal, from_finalize: fromFinalize, start,
        duration: end - start, channel: { alternatives: [{ transcript: w.map((x) => x.word).join(" "), confidence: 1, words: w }] },
        metadata: { request_id: "fake" } }));
      return end;
    };
    ws.on("message", (data, isBinary) => {
      if (!isBinary) {
        const m = JSON.parse(data.toString());
        if (m.type === "CloseStream") {
          if (samples.length > done) { results(ws, words(done, samples.length), true, true); done = samples.length; }
          ws.send(JSON.stringify({ type: "Metadata", request_id: "fake", duration: samples.length / RATE }));
          ws.close(1000);
        }
        return;
      }
      const pcm = new Int16Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
      for (const v of pcm) samples.push(v);
      if (samples.length - lastPartial >= RATE / 2) {
        lastPartial = samples.length;
        results(ws, words(done, samples.length), false);
      }
      if (samples.length - done >= RATE) {
        const ws_ = words(done, samples.length).filter((w) => w.complete);
        const end = results(ws, ws_, true);
        done = Math.round(end * RATE);
      }
    });
  }
  return new Promise((ok) => http.listen(0, "127.0.0.1", () => {
    state.url = `http://127.0.0.1:${http.address().port}`;
    state.close = () => { for (const s of state.sockets) s.terminate(); wss.close(); http.close(); };
    ok(state);
  }));
}

// seconds of audio where each sample's value is its quarter-second index.
function quarters(from, to) {
  const a = new Int16Array(Math.round((to - from) * RATE));
  for (let i = 0; i < a.length; i++) a[i] = Math.floor((from + i / RATE) * 4);
  return a;
}

test("reconnect resends the audio after the last final, and no word is delivered twice", async () => {
  const srv = await fakeServer();
  let n = 0;
  const conn = connect({ url: srv.url, getToken: () => "tok" + ++n, WebSocket, keepAliveMs: 0 });
  const finals = [];
  let reconnects = 0;
  conn.on("final", (e) => finals.push(e));
  conn.on("reconnecting", () => reconnects++);
  const closed = new Promise((r) => conn.on("close", r));
  const frame = 480; // 30 ms: frames do not line up with the finals' quarter boundaries
  const audio = quarters(0, 5);
  for (let i = 0; i < audio.length; i += frame) {
    conn.sendAudio(audio.subarray(i, i + frame));
    if (i <= 2.6 * RATE && i + frame > 2.6 * RATE) conn._dropForTest();
    await new Promise((r) => setTimeout(r, 2));
  }
  await conn.close(5000);
  const c = await closed;
  srv.close();
  assert.equal(c.error, undefined);
  assert.equal(reconnects, 1);
  assert.equal(srv.connections, 2);
  assert.deepEqual(srv.tokens, ["tok1", "tok2"], "each connection gets a fresh token");
  const text = finals.map((f) => f.transcript).join(" ");
  const want = Array.from({ length: 20 }, (_, i) => "q" + i).join(" ");
  assert.equal(text, want);
  for (const f of finals) for (const w of f.words) assert.equal(w.word, "q" + Math.round(w.start * 4 - 0.49), `${w.word} at ${w.start}s (stream time)`);
  // The second connection names the stream it resumes and where its audio starts in
  // it, exactly: offset + the audio it received = the whole stream (billing counts the
  // resent audio once from these).
  assert.equal(srv.queries[0].get("resume"), null, "a new stream resumes nothing");
  assert.equal(srv.queries[1].get("resume"), "fake");
  const offsetMs = Number(srv.queries[1].get("resume_offset_ms"));
  assert.equal(offsetMs + (srv.received[1].length * 1000) / RATE, 5000, `resume_offset_ms=${offsetMs}, ${srv.received[1].length} samples resent`);
  assert.ok(offsetMs < 2600, `resume_offset_ms=${offsetMs}: the resend starts before the drop at 2.6 s`);
});

test("refused connections report the server's code; quota is not retried", async () => {
  const srv = await fakeServer({ reject: () => ({ status: 402, code: "QUOTA_EXHAUSTED", msg: "quota used up" }) });
  const conn = connect({ url: srv.url, token: "t", WebSocket });
  const c = await new Promise((r) => conn.on("close", r));
  srv.close();
  assert.equal(c.error.code, "QUOTA_EXHAUSTED");
  assert.equal(c.error.status, 402);
  assert.equal(srv.tokens.length, 1);
});

test("no capacity (503) is retried, then the stream works", async () => {
  let refused = 0;
  const srv = await fakeServer({ reject: () => (refused++ < 2 ? { status: 503, code: "NO_CAPACITY", msg: "busy" } : null) });
  const conn = connect({ url: srv.url, token: "t", getToken: () => "t", WebSocket });
  const errs = [];
  conn.on("reconnecting", (e) => errs.push(e.error.code));
  await new Promise((r) => conn.on("open", r));
  conn.sendAudio(quarters(0, 1.2));
  await conn.close(5000);
  srv.close();
  assert.deepEqual(errs, ["NO_CAPACITY", "NO_CAPACITY"]);
});

test("unreachable server", async () => {
  const conn = connect({ url: "http://127.0.0.1:1", token: "t", WebSocket, reconnect: false });
  const c = await new Promise((r) => conn.on("close", r));
  assert.equal(c.error.code, "UNREACHABLE");
});

test("listenURL sends each key term as its own keyterm parameter", () => {
  const u = new URL(listenURL({ url: "http://h:1", model: "tiny.en", keyterms: ["Montreal Forced Aligner", "Kubernetes"] }));
  assert.deepEqual(u.searchParams.getAll("keyterm"), ["Montreal Forced Aligner", "Kubernetes"]);
  assert.equal(new URL(listenURL({ url: "http://h:1" })).searchParams.has("keyterm"), false);
});

test("listenURL sends language (a BCP-47 tag or multi)", () => {
  for (const lang of ["zh-CN", "zh-TW", "multi", "en"]) {
    assert.equal(new URL(listenURL({ url: "http://h:1", model: "base", language: lang })).searchParams.get("language"), lang);
  }
  assert.equal(new URL(listenURL({ url: "http://h:1", model: "base" })).searchParams.has("language"), false);
});

test("joinText: a space between words, none where either side is CJK, Thai, …", () => {
  assert.equal(joinText("ask not", "what"), "ask not what");
  assert.equal(joinText("", "广州市"), "广州市");
  assert.equal(joinText("广州市", ""), "广州市");
  assert.equal(joinText("广州市", "房地产"), "广州市房地产");
  assert.equal(joinText("广州市。", "房地产"), "广州市。房地产");
  assert.equal(joinText("我想问", "Earshot"), "我想问Earshot");
  assert.equal(joinText("Earshot", "很好"), "Earshot很好");
  assert.equal(joinText("これは", "ペン"), "これはペン");
  assert.equal(joinText("안녕하세요", "세계"), "안녕하세요 세계"); // Korean is written with spaces
  assert.equal(joinText("a ", "b"), "a b");
  assert.equal(joinText("𠀀", "𠀁"), "𠀀𠀁"); // beyond the BMP
});

test("detectedLanguage from channel.detected_language; CJK words resent after a reconnect are joined without spaces", async () => {
  const http = createServer();
  const wss = new WebSocketServer({ server: http, handleProtocols: (ps) => [...ps][0] });
  let conns = 0;
  wss.on("connection", (ws) => {
    const n = conns++;
    const w = (word, start, end) => ({ word, punctuated_word: word, start, end, confidence: 1, language: "zh" });
    let sent = false;
    ws.on("message", (data, isBinary) => {
      if (n === 0 && isBinary && !sent) {
        // A final up to 0.5 s, then the socket drops: the SDK reconnects and resends from there.
        sent = true;
        ws.send(JSON.stringify({ type: "Results", is_final: true, start: 0, duration: 0.5, metadata: { request_id: "r0" },
          channel: { detected_language: "zh", alternatives: [{ transcript: "广州", confidence: 1, languages: ["zh"], words: [w("广", 0, 0.25), w("州", 0.25, 0.5)] }] } }));
        setTimeout(() => ws.terminate(), 50);
        return;
      }
      if (n === 0 || isBinary || JSON.parse(data.toString()).type !== "CloseStream") return;
      // The new session gets the stream from its start again (the context before the
      // cut) and repeats the first final's words before the new ones.
      ws.send(JSON.stringify({ type: "Results", is_final: true, start: 0, duration: 1, metadata: { request_id: "r1" },
        channel: { detected_language: "zh", alternatives: [{ transcript: "广州市房", confidence: 1, languages: ["zh"],
          words: [w("广", 0, 0.25), w("州", 0.25, 0.5), w("市", 0.5, 0.75), w("房", 0.75, 1)] }] } }));
      ws.close(1000);
    });
  });
  await new Promise((r) => http.listen(0, "127.0.0.1", r));
  const conn = connect({ url: `http://127.0.0.1:${http.address().port}`, token: "t", WebSocket, language: "multi", keepAliveMs: 0 });
  const finals = [];
  const opens = [];
  conn.on("final", (ev) => finals.push(ev));
  conn.on("open", (ev) => opens.push(ev));
  conn.sendAudio(new Int16Array(RATE)); // 1 s
  for (let i = 0; i < 200 && opens.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(opens.length, 2, "no reconnect");
  await conn.close(5000);
  http.close();
  assert.deepEqual(finals.map((f) => [f.transcript, f.detectedLanguage]), [["广州", "zh"], ["市房", "zh"]]);
});
