// The official Deepgram JavaScript SDK (@deepgram/sdk, unmodified) as a Flux client
// (client.listen.v2) against a REAL `earshot serve --demo` (real Redis, real tiny.en, the
// server's end-of-turn model), the JS twin of internal/e2e TestFluxOfficialSDK: with an
// API key it opens /v2/listen with eager_eot_threshold 0.4 and streams JFK, two seconds
// of silence and JFK's first two seconds again in real time; through the SDK's own
// methods it sends Configure a second in (sendConfigure: eot_threshold 1, so only the
// timeout ends a turn, and eot_timeout_ms 1200), ForceEndTurn right after the last
// audio, mid-word (sendForceEndTurn), then CloseStream (sendCloseStream).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { DeepgramClient } from "@deepgram/sdk";
import { CLIP, jfkWav, normalise, readWav, startEarshot, wordDistance } from "./helpers/server.mjs";
import { fluxOrderError } from "./helpers/turns.mjs";

let srv;
before(async () => { srv = await startEarshot(); });
after(async () => { await srv?.stop(); });

const EAGER = 0.4;
const CONFIGURE = { eot_threshold: 1, eot_timeout_ms: 1200 };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test("Deepgram JS SDK listen.v2: eager turns, Configure and ForceEndTurn", { timeout: 120_000 }, async () => {
  const { rate, samples } = readWav(jfkWav);
  assert.equal(rate, 16000);
  const audio = new Int16Array(samples.length + 2 * rate + 2 * rate);
  audio.set(samples);
  audio.set(samples.subarray(0, 2 * rate), samples.length + 2 * rate); // cut in "Americans"

  const client = new DeepgramClient({ apiKey: srv.apiKey(), baseUrl: srv.base });
  const conn = await client.listen.v2.connect({
    model: "flux-general-en", encoding: "linear16", sample_rate: 16000,
    eager_eot_threshold: EAGER, eot_timeout_ms: 1500, reconnectAttempts: 0,
  });
  const t0 = performance.now();
  const now = () => (performance.now() - t0) / 1000;
  const msgs = []; // {t, m}
  const errors = [];
  let onEndOfTurn = () => {};
  conn.on("message", (m) => {
    msgs.push({ t: now(), m });
    if (m.type === "TurnInfo" && m.event === "EndOfTurn") onEndOfTurn();
  });
  conn.on("error", (e) => errors.push(String(e?.message ?? e)));
  const closed = new Promise((r) => conn.on("close", r));
  conn.connect();
  await conn.waitForOpen();

  // Real time, 50 ms frames; Configure after a second of audio.
  const frame = rate / 20;
  let configureAt;
  for (let i = 0, n = 0; i < audio.length; i += frame, n++) {
    if (n === 20) {
      conn.sendConfigure({ type: "Configure", thresholds: CONFIGURE });
      configureAt = now();
    }
    conn.sendMedia(Buffer.from(audio.buffer, audio.byteOffset + 2 * i, 2 * Math.min(frame, audio.length - i)));
    const wait = t0 + (n + 1) * 50 - performance.now();
    if (wait > 0) await sleep(wait);
  }
  const forced = new Promise((r) => { onEndOfTurn = r; });
  conn.sendForceEndTurn({ type: "ForceEndTurn" });
  const forceAt = now();
  await Promise.race([forced, sleep(5000)]);
  conn.sendCloseStream({ type: "CloseStream" });
  const close = await Promise.race([closed, sleep(30_000).then(() => null)]);
  const log = () => msgs.map(({ t, m }) => `${t.toFixed(3)} ${JSON.stringify(m)}`).join("\n") + "\n" + srv.log();
  assert.ok(close, "the server did not close the stream after CloseStream\n" + log());
  assert.equal(close.code, 1000, `closed with ${close.code} ${close.reason}`);
  assert.deepEqual(errors, []);

  // Connected first; sequence_id counts every message; one ConfigureSuccess, promptly,
  // with the thresholds sent and the eager one the stream opened with.
  assert.equal(msgs[0].m.type, "Connected", log());
  const reqId = msgs[0].m.request_id;
  msgs.forEach(({ m }, i) => {
    assert.equal(m.sequence_id, i, `message ${i}: ${JSON.stringify(m)}`);
    assert.equal(m.request_id, reqId, `message ${i}: ${JSON.stringify(m)}`);
  });
  const configured = msgs.filter(({ m }) => m.type.startsWith("Configure"));
  assert.equal(configured.length, 1, log());
  assert.equal(configured[0].m.type, "ConfigureSuccess", JSON.stringify(configured[0].m));
  assert.deepEqual(configured[0].m.thresholds, { eager_eot_threshold: EAGER, ...CONFIGURE });
  assert.ok(configured[0].t - configureAt < 2, `ConfigureSuccess ${configured[0].t - configureAt} s after Configure`);

  // TurnInfo in Flux's order.
  const turns = msgs.filter(({ m }) => m.type === "TurnInfo");
  assert.equal(turns.length + configured.length + 1, msgs.length, log());
  const flow = turns.map(({ m }) => `${m.turn_index}:${m.event}${m.trigger ? "(" + m.trigger + ")" : ""}`)
    .filter((e, i, a) => !(e.endsWith("Update") && a[i - 1] === e)).join(" ");
  assert.equal(fluxOrderError(turns.map(({ m }) => ({ event: m.event, turnIndex: m.turn_index }))), "", flow);

  // Each EndOfTurn with the EagerEndOfTurn not taken back before it.
  const ends = [];
  let eager = null;
  for (const x of turns) {
    if (x.m.event === "EagerEndOfTurn") eager = x;
    if (x.m.event === "TurnResumed") eager = null;
    if (x.m.event === "EndOfTurn") {
      ends.push({ ...x, eager });
      eager = null;
    }
  }
  for (const e of ends) {
    if (e.eager) assert.equal(e.m.transcript, e.eager.m.transcript, `EndOfTurn differs from its EagerEndOfTurn: ${flow}`);
  }

  // ForceEndTurn: the last EndOfTurn, manual, within 2 s, with the words spoken so far.
  assert.ok(ends.length >= 2, flow);
  const last = ends.at(-1);
  assert.ok(last.t > forceAt && last.t - forceAt < 2 && last.m.trigger === "manual" && /fellow/i.test(last.m.transcript),
    `after ForceEndTurn at ${forceAt.toFixed(3)} s: ${JSON.stringify(last.m)} at ${last.t.toFixed(3)} s\n${flow}`);
  assert.ok(ends.at(-2).t < forceAt, flow);

  // JFK's turns, all after the Configure: ended by the timeout (eot_threshold 1); at
  // least one announced early (in the pause, not with the EndOfTurn: 0.3 s or more
  // before it) by an EagerEndOfTurn at eager_eot_threshold or above; the clip.
  const jfk = ends.slice(0, -1);
  for (const e of jfk) assert.equal(e.m.trigger, "timeout", `JFK's turn ${JSON.stringify(e.m.transcript)}: ${flow}`);
  const announced = jfk.filter((e) => e.eager && e.eager.m.end_of_turn_confidence >= EAGER && e.t - e.eager.t >= 0.3);
  assert.ok(announced.length >= 1, `no EagerEndOfTurn at ${EAGER} or above 0.3 s or more before JFK's EndOfTurns: ${flow}`);
  const text = normalise(jfk.map((e) => e.m.transcript).join(" "));
  assert.ok(wordDistance(text, CLIP) <= 4, `EndOfTurns differ from the clip: ${JSON.stringify(text)}`);

  console.log(`# ${flow}`);
  console.log(`# ConfigureSuccess ${Math.round(1000 * (configured[0].t - configureAt))} ms after Configure; ` +
    `EagerEndOfTurn ${announced.map((e) => Math.round(1000 * (e.t - e.eager.t))).join(", ")} ms before EndOfTurn; ` +
    `forced EndOfTurn ${JSON.stringify(last.m.transcript)} ${Math.round(1000 * (last.t - forceAt))} ms after ForceEndTurn`);
});
