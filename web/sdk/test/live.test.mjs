// End-to-end SDK tests against a REAL `earshot serve --demo` (bin/earshot, or
// EARSHOT_BIN) with a real Redis and the real tiny.en model: the JFK clip streamed
// in real time must come back as partials, then a final with the sentence.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { connect } from "../dist/index.js";
import { CLIP, SENTENCE, billedMs, demoToken, jfkWav, normalise, readWav, settledBilledMs, startEarshot, streamRealTime, wordDistance } from "./helpers/server.mjs";

let srv;
before(async () => { srv = await startEarshot(); });
after(async () => { await srv?.stop(); });

function record(conn) {
  const rec = { events: [], finals: [], partials: 0, partialBeforeFinal: false, errors: [], opens: 0, reconnects: 0 };
  conn.on("partial", (e) => {
    if (e.transcript.trim()) {
      rec.partials++;
      if (rec.finals.length === 0) rec.partialBeforeFinal = true;
    }
  });
  conn.on("final", (e) => { if (e.transcript.trim()) rec.finals.push(e); });
  conn.on("error", (e) => rec.errors.push(e));
  conn.on("open", () => rec.opens++);
  conn.on("reconnecting", () => rec.reconnects++);
  rec.closed = new Promise((r) => conn.on("close", r));
  rec.text = () => normalise(rec.finals.map((f) => f.transcript).join(" "));
  return rec;
}

const silence = (rate, s) => new Int16Array(Math.round(rate * s));

test("JFK in real time: partials, then a final with the sentence", { timeout: 120_000 }, async () => {
  const { rate, samples } = readWav(jfkWav);
  assert.equal(rate, 16000);
  const conn = connect({
    url: srv.base, token: await demoToken(srv.base), getToken: () => demoToken(srv.base),
    model: "tiny.en", WebSocket, interimResults: true, vadEvents: true, reconnect: false,
  });
  const rec = record(conn);
  await streamRealTime(conn, samples, rate);
  await streamRealTime(conn, silence(rate, 1.5), rate);
  await conn.close(30_000);
  const close = await rec.closed;
  assert.equal(close.error, undefined, `closed with error: ${close.error?.code} ${close.error?.message}\n${srv.log()}`);
  assert.ok(rec.partials > 0, "no partial results");
  assert.ok(rec.partialBeforeFinal, "the first final came before any partial");
  assert.match(rec.text(), new RegExp(SENTENCE), `finals: ${JSON.stringify(rec.text())}`);
  const last = rec.finals[rec.finals.length - 1];
  assert.ok(last.end > 8 && last.end < 13, `last final ends at ${last.end}s of an 11 s clip`);
});

test("reconnect mid-sentence resumes without losing or repeating speech, nothing free", { timeout: 120_000 }, async () => {
  const { rate, samples } = readWav(jfkWav);
  const billedBefore = await billedMs(srv);
  let tokens = 0;
  const conn = connect({
    url: srv.base, getToken: () => { tokens++; return demoToken(srv.base); },
    model: "tiny.en", WebSocket, interimResults: true, reconnect: true,
  });
  const rec = record(conn);
  let dropped = false;
  await streamRealTime(conn, samples, rate, {
    onTime: (t) => {
      // Inside "ask not what your country…": the resent audio must carry it.
      if (!dropped && t >= 5.0) {
        dropped = true;
        conn._dropForTest();
      }
    },
  });
  await streamRealTime(conn, silence(rate, 1.5), rate);
  await conn.close(30_000);
  const close = await rec.closed;
  assert.equal(close.error, undefined, `closed with error: ${close.error?.code} ${close.error?.message}\n${srv.log()}`);
  assert.ok(rec.reconnects >= 1, "the SDK did not reconnect");
  assert.ok(rec.opens >= 2, `opened ${rec.opens} times, want a second session`);
  assert.ok(tokens >= 2, "reconnect did not fetch a fresh token");
  // Nothing lost, nothing repeated. The first words after the pause at 5.4 s are
  // ambiguous to tiny.en ("what your" comes back as "watch your", "why your", "why do"
  // on some runs, most often after a reconnect: apparently the server keeps words its
  // early partials agreed on, and the resend changes when those run). The first phrase is
  // a second such spot: "and so my fellow" is what tiny.en says for it with a partial's
  // context, "and so am i fellow" (2 edits) what it says for the exact VAD window without a
  // prompt (TestPauseSplitSim's log; seen here once in a CI dry run, under load, together
  // with "why do"). So allow two word edits per spot against the clip, and require each
  // phrase outside the spots exactly as often as the clip has it: a lost or repeated
  // resend removes or doubles one of them. (fake.test.mjs checks loss and repetition
  // exactly, sample by sample.)
  const text = rec.text();
  const dist = wordDistance(text, CLIP);
  assert.ok(dist <= 4, `finals differ from the clip by ${dist} words:\n got: ${JSON.stringify(text)}\nwant: ${JSON.stringify(CLIP)}`);
  for (const [phrase, n] of [["fellow americans", 1], ["ask not", 1], ["can do for you ask what you can do for your country", 1]]) {
    const count = text.match(new RegExp(`\\b${phrase}\\b`, "g"))?.length ?? 0;
    assert.equal(count, n, `"${phrase}" delivered ${count} times, want ${n}: ${JSON.stringify(text)}`);
  }
  for (let i = 1; i < rec.finals.length; i++) {
    assert.ok(rec.finals[i].end > rec.finals[i - 1].end, `finals out of order or repeated: ${rec.finals.map((f) => [f.start, f.end])}`);
  }
  // Both connections are metered. The resume rule (docs/api.md): the second is not
  // billed for what the first paid for without a final, and for nothing else. The SDK
  // resends up to resumeContextSeconds of already finalised audio before its resume
  // point as decoder context; that is billed again. So nothing is free (billed ≥ sent),
  // and at most the first connection's audio (5 s, the drop) is billed twice.
  const sentMs = Math.round(((samples.length + silence(rate, 1.5).length) * 1000) / rate);
  const grown = await settledBilledMs(srv, billedBefore, sentMs);
  const extra = grown - sentMs;
  assert.ok(extra >= 0 && extra <= 5000, `billed ${grown} ms for ${sentMs} ms of audio sent over two connections: want between ${sentMs} and ${sentMs + 5000}\n${srv.log()}`);
  console.log(`# billed ${grown} ms for ${sentMs} ms sent (${extra} ms of finalised context resent)`);
});

// A WebSocket that, like a browser's, does not say why an upgrade was refused (no
// HTTP status in the error), so the SDK must ask with a plain GET /v1/listen.
class BrowserLikeWebSocket extends WebSocket {
  addEventListener(type, fn, opts) {
    return super.addEventListener(type, type === "error" ? () => fn({ type: "error" }) : fn, opts);
  }
}

test("refused upgrade with the status hidden (as in a browser): the SDK learns the code from GET /v1/listen", { timeout: 30_000 }, async () => {
  const cases = [
    { name: "bad token", opts: { token: "est1.not-a-token" }, status: 401, code: "INVALID_AUTH" },
    { name: "bad parameter", opts: { token: await demoToken(srv.base), sampleRate: 100 }, status: 400, code: "BAD_REQUEST", msg: /sample_rate/ },
    { name: "unknown model", opts: { token: await demoToken(srv.base), model: "no-such-model" }, status: 400, code: "UNKNOWN_MODEL" },
  ];
  for (const c of cases) {
    const conn = connect({ url: srv.base, WebSocket: BrowserLikeWebSocket, reconnect: false, ...c.opts });
    const close = await new Promise((r) => conn.on("close", r));
    assert.equal(close.error?.code, c.code, `${c.name}: ${close.error?.code} ${close.error?.message}`);
    assert.equal(close.error?.status, c.status, c.name);
    if (c.msg) assert.match(close.error.message, c.msg, c.name);
  }
});
