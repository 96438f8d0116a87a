// End-to-end SDK tests against a REAL `earshot serve --demo` (bin/earshot, or
// EARSHOT_BIN) with a real Redis and the real tiny.en model: the JFK clip streamed
// in real time must come back as partials, then a final with the sentence.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { connect } from "../dist/index.js";
import { SENTENCE, demoToken, jfkWav, normalise, readWav, startEarshot, streamRealTime } from "./helpers/server.mjs";

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

test("reconnect mid-sentence resumes without losing or repeating speech", { timeout: 120_000 }, async () => {
  const { rate, samples } = readWav(jfkWav);
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
  const text = rec.text();
  assert.match(text, new RegExp(SENTENCE), `finals: ${JSON.stringify(text)}`);
  assert.equal(text.split("ask not").length - 1, 1, `"ask not" delivered more than once: ${JSON.stringify(text)}`);
  for (let i = 1; i < rec.finals.length; i++) {
    assert.ok(rec.finals[i].end > rec.finals[i - 1].end, `finals out of order or repeated: ${rec.finals.map((f) => [f.start, f.end])}`);
  }
});
