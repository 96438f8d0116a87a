// Unit tests of connectTurns (GET /v2/listen, Deepgram Flux's protocol) against a
// DETERMINISTIC STAND-IN server (helpers/flux-standin.mjs, not Earshot): message
// parsing, the order of events, control messages, latency from send times, errors,
// and microphone() feeding a turn stream. The real server: turns-live.test.mjs.
import { test } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { connectTurns, microphone, turnsURL } from "../dist/index.js";
import { EAGER_MS, EOT_MS, RATE, fluxStandin, script } from "./helpers/flux-standin.mjs";
import { fluxOrderError } from "./helpers/turns.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Records every event of a TurnConnection in one list, in the order emitted. */
function record(conn) {
  const rec = { all: [], turns: [], names: [], errors: [], configured: [] };
  for (const name of ["open", "connected", "turn", "startofturn", "update", "eagerendofturn", "turnresumed", "endofturn",
    "configuresuccess", "configurefailure", "error", "close"]) {
    conn.on(name, (e) => rec.names.push(name));
  }
  conn.on("turn", (e) => rec.turns.push(e));
  conn.on("error", (e) => rec.errors.push(e));
  conn.on("configuresuccess", (e) => rec.configured.push(e));
  conn.on("configurefailure", (e) => rec.configured.push(e));
  rec.closed = new Promise((r) => conn.on("close", r));
  /** Event names with runs of Update merged: "StartOfTurn Update EagerEndOfTurn …". */
  rec.flow = () => rec.turns.map((t) => t.event).filter((e, i, a) => !(e === "Update" && a[i - 1] === "Update")).join(" ");
  return rec;
}

/** Sends audio in 20 ms frames, all at once (the stand-in's times are samples, not wall time). */
function sendAll(conn, pcm, frame = 320) {
  for (let i = 0; i < pcm.length; i += frame) conn.sendAudio(pcm.subarray(i, i + frame));
}

const until = async (cond, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await sleep(5);
  }
};

test("turnsURL: /v2/listen with Flux's parameters only", () => {
  const u = new URL(turnsURL({
    url: "https://h:1", model: "flux-general-en", eotThreshold: 0.8, eagerEotThreshold: 0.5, eotTimeoutMs: 3000,
    keyterms: ["Earshot", "Kubernetes"],
  }));
  assert.equal(u.protocol, "wss:");
  assert.equal(u.pathname, "/v2/listen");
  assert.deepEqual(Object.fromEntries(u.searchParams), {
    model: "flux-general-en", encoding: "linear16", sample_rate: "16000", eot_threshold: "0.8", eager_eot_threshold: "0.5",
    eot_timeout_ms: "3000", keyterm: "Kubernetes",
  });
  assert.deepEqual(u.searchParams.getAll("keyterm"), ["Earshot", "Kubernetes"]);
  // /v2/listen refuses /v1's parameters: none of them is sent.
  const plain = new URL(turnsURL({ url: "http://h:1/" }));
  assert.deepEqual([...plain.searchParams.keys()].sort(), ["encoding", "sample_rate"]);
  assert.equal(new URL(turnsURL({ url: "ws://h:1/v1/listen" })).pathname, "/v2/listen");
  assert.equal(new URL(turnsURL({ url: "ws://h:1/v2/listen" })).pathname, "/v2/listen");
});

test("turnsURL: language_hint with a multilingual model; none asks the server to detect", () => {
  const u = new URL(turnsURL({ url: "http://h:1", model: "base", languageHint: "zh-CN" }));
  assert.equal(u.searchParams.get("model"), "base");
  assert.deepEqual(u.searchParams.getAll("language_hint"), ["zh-CN"]);
  assert.equal(u.searchParams.has("language"), false); // /v2/listen refuses language=
  assert.equal(new URL(turnsURL({ url: "http://h:1", model: "base" })).searchParams.has("language_hint"), false);
});

test("two turns in Flux's order: events parsed, sequence ids, transcripts, words in stream seconds", async () => {
  const srv = await fluxStandin();
  const conn = connectTurns({ url: srv.url, token: "tok", WebSocket, eotThreshold: 0.7, eagerEotThreshold: 0.5, keepAliveMs: 0 });
  const rec = record(conn);
  // 0.5 s silence, "w1 w2 w3 w4" (a quarter second each), 0.6 s silence, "w5 w6", 0.6 s silence.
  sendAll(conn, script([[0, 0.5], [1, 0.25], [2, 0.25], [3, 0.25], [4, 0.25], [0, 0.6], [5, 0.25], [6, 0.25], [0, 0.6]]));
  await until(() => rec.turns.filter((t) => t.event === "EndOfTurn").length === 2);
  await conn.closeStream(5000);
  const close = await rec.closed;
  srv.close();
  assert.equal(close.code, 1000);
  assert.equal(close.error, undefined);
  assert.deepEqual(srv.tokens, ["tok"]);
  assert.equal(srv.queries[0].get("eot_threshold"), "0.7");
  assert.equal(srv.queries[0].get("eager_eot_threshold"), "0.5");
  assert.equal(srv.paths[0], "/v2/listen");

  assert.equal(rec.names[0], "open");
  assert.equal(rec.names[1], "connected");
  assert.equal(conn.requestId, "standin");
  assert.equal(rec.flow(), "StartOfTurn Update EagerEndOfTurn EndOfTurn StartOfTurn Update EagerEndOfTurn EndOfTurn");
  assert.equal(fluxOrderError(rec.turns), "");
  // Each TurnInfo is "turn", then its own event.
  const named = rec.names.filter((n) => n !== "open" && n !== "connected" && n !== "close");
  for (let i = 0; i < rec.turns.length; i++) {
    assert.equal(named[2 * i], "turn");
    assert.equal(named[2 * i + 1], rec.turns[i].event.toLowerCase());
  }
  // Every message of the stream counted from 0 (Connected is 0).
  assert.deepEqual(rec.turns.map((t) => t.sequenceId), rec.turns.map((_, i) => i + 1));
  const s0 = rec.turns[0];
  const e0 = rec.turns.find((t) => t.event === "EndOfTurn");
  assert.equal(s0.audioWindowStart, 0.5);
  assert.equal(s0.transcript, "");
  assert.equal(s0.turnIndex, 0);
  const eager0 = rec.turns.find((t) => t.event === "EagerEndOfTurn");
  assert.equal(eager0.transcript, "w1 w2 w3 w4");
  assert.equal(eager0.endOfTurnConfidence, 0.8);
  assert.equal(e0.transcript, eager0.transcript, "EndOfTurn repeats the EagerEndOfTurn's transcript");
  assert.equal(e0.trigger, "model");
  assert.equal(e0.turnIndex, 0);
  assert.equal(e0.requestId, "standin");
  assert.deepEqual(e0.words.map((w) => [w.word, w.start, w.end]), [["w1", 0.5, 0.75], ["w2", 0.75, 1], ["w3", 1, 1.25], ["w4", 1.25, 1.5]]);
  assert.equal(e0.audioWindowEnd, 1.5 + EOT_MS / 1000);
  const e1 = rec.turns.filter((t) => t.event === "EndOfTurn")[1];
  assert.equal(e1.turnIndex, 1);
  assert.equal(e1.transcript, "w5 w6");
  assert.equal(rec.turns.find((t) => t.event === "StartOfTurn" && t.turnIndex === 1).audioWindowStart, 2.1);
  assert.equal(conn.turnIndex, 2, "the next turn");
  // Updates carry the turn so far.
  const ups = rec.turns.filter((t) => t.event === "Update" && t.turnIndex === 0).map((t) => t.transcript);
  assert.ok(ups.length >= 2 && ups.at(-1).startsWith("w1 w2 w3"), JSON.stringify(ups));
  // Raw fields are kept.
  assert.equal(e0.raw.type, "TurnInfo");
  assert.equal(e0.raw.event, "EndOfTurn");
});

test("speech after an EagerEndOfTurn: TurnResumed, then a new EagerEndOfTurn and the EndOfTurn", async () => {
  const srv = await fluxStandin();
  const conn = connectTurns({ url: srv.url, token: "t", WebSocket, eagerEotThreshold: 0.4, keepAliveMs: 0 });
  const rec = record(conn);
  // A pause of 0.3 s: longer than EAGER_MS, shorter than EOT_MS.
  sendAll(conn, script([[1, 0.5], [0, (EAGER_MS + EOT_MS) / 2000], [2, 0.5], [0, 0.5]]));
  await until(() => rec.turns.some((t) => t.event === "EndOfTurn"));
  await conn.closeStream();
  await rec.closed;
  srv.close();
  assert.equal(rec.flow(), "StartOfTurn Update EagerEndOfTurn TurnResumed Update EagerEndOfTurn EndOfTurn");
  assert.equal(fluxOrderError(rec.turns), "");
  const eagers = rec.turns.filter((t) => t.event === "EagerEndOfTurn");
  assert.deepEqual(eagers.map((e) => e.transcript), ["w1", "w1 w2"]);
  assert.equal(rec.turns.at(-1).transcript, "w1 w2");
  assert.equal(rec.turns.at(-1).trigger, "model");
});

test("control messages: forceEndTurn, configure (success, failure), closeStream; queued in order before the open", async () => {
  const srv = await fluxStandin();
  const conn = connectTurns({ url: srv.url, getToken: async () => "fresh", WebSocket, keepAliveMs: 0 });
  const rec = record(conn);
  // Given before the socket is open: sent on open, in this order, after the audio before them.
  conn.sendAudio(script([[1, 0.3]]));
  conn.forceEndTurn();
  assert.equal(conn.state, "connecting");
  await until(() => rec.turns.some((t) => t.event === "EndOfTurn"));
  assert.deepEqual(srv.tokens, ["fresh"]);
  const forced = rec.turns.find((t) => t.event === "EndOfTurn");
  assert.equal(forced.trigger, "manual");
  assert.equal(forced.transcript, "w1");
  // Nothing happens for ForceEndTurn between turns.
  conn.forceEndTurn();

  conn.configure({ eotThreshold: 0.9, eotTimeoutMs: 800 });
  await until(() => rec.configured.length === 1);
  assert.deepEqual(rec.configured[0].thresholds, { eotThreshold: 0.9, eotTimeoutMs: 800 });
  assert.deepEqual(rec.configured[0].keyterms, []);
  conn.configure({ eotThreshold: 0.2 });
  await until(() => rec.configured.length === 2);
  assert.match(rec.configured[1].description, /eot_threshold/);
  assert.equal(rec.configured[1].thresholds, undefined);
  conn.configure({ eagerEotThreshold: 0.6 });
  await until(() => rec.configured.length === 3);
  assert.deepEqual(rec.configured[2].thresholds, { eotThreshold: 0.9, eagerEotThreshold: 0.6, eotTimeoutMs: 800 },
    "a failed Configure changed nothing; every current value is reported");
  assert.deepEqual(rec.names.filter((n) => n.startsWith("configure")), ["configuresuccess", "configurefailure", "configuresuccess"]);

  // eot_threshold 0.9 is above the stand-in's confidence: the turn ends by eot_timeout_ms.
  sendAll(conn, script([[2, 0.25], [0, 0.9]]));
  await until(() => rec.turns.filter((t) => t.event === "EndOfTurn").length === 2);
  assert.equal(rec.turns.filter((t) => t.event === "EndOfTurn")[1].trigger, "timeout");

  // CloseStream inside a turn: EndOfTurn "close", then close 1000.
  sendAll(conn, script([[3, 0.25]]));
  const closing = conn.closeStream(5000);
  assert.equal(conn.state, "closing");
  conn.sendAudio(script([[4, 0.25]])); // ignored after closeStream
  conn.forceEndTurn(); // ignored too
  await closing;
  const close = await rec.closed;
  srv.close();
  assert.equal(close.code, 1000);
  assert.equal(close.error, undefined);
  assert.equal(conn.state, "closed");
  const last = rec.turns.at(-1);
  assert.equal(last.event, "EndOfTurn");
  assert.equal(last.trigger, "close");
  assert.equal(last.transcript, "w3");
  assert.equal(fluxOrderError(rec.turns), "");
  assert.deepEqual(srv.log[0].map((l) => [l.samples, l.msg]), [
    [4800, { type: "ForceEndTurn" }], // after the 0.3 s given before the open
    [4800, { type: "ForceEndTurn" }],
    [4800, { type: "Configure", thresholds: { eot_threshold: 0.9, eot_timeout_ms: 800 } }],
    [4800, { type: "Configure", thresholds: { eot_threshold: 0.2 } }],
    [4800, { type: "Configure", thresholds: { eager_eot_threshold: 0.6 } }],
    [27200, { type: "CloseStream" }], // 0.3 + 0.25 + 0.9 + 0.25 s
  ]);
  assert.equal(rec.errors.length, 0);
});

test("latency: from the send time of audio_window_start (StartOfTurn) and of the last word's end (EndOfTurn)", async () => {
  const HOLD = 150;
  // The stand-in holds each EndOfTurn back HOLD ms, as a slow decode would.
  const srv = await fluxStandin({ delayMs: (m) => (m.event === "EndOfTurn" ? HOLD : 0) });
  const conn = connectTurns({ url: srv.url, token: "t", WebSocket, keepAliveMs: 0 });
  const rec = record(conn);
  await new Promise((r) => conn.on("open", r));
  // Speech now; the pause that ends the turn only GAP ms later (wall time). The
  // speech ends exactly at a frame boundary: the silence's frame must not count.
  const GAP = 300;
  const t0 = performance.now();
  sendAll(conn, script([[0, 0.2], [1, 0.5]]));
  await sleep(GAP);
  const t1 = performance.now();
  sendAll(conn, script([[0, 0.6]]));
  await until(() => rec.turns.some((t) => t.event === "EndOfTurn"));
  await conn.closeStream();
  await rec.closed;
  srv.close();
  const start = rec.turns.find((t) => t.event === "StartOfTurn");
  const end = rec.turns.find((t) => t.event === "EndOfTurn");
  assert.equal(start.latencyFrom, 0.2);
  assert.equal(end.latencyFrom, 0.7, "the end of the last word");
  assert.ok(conn.sentAt(0.2) >= t0 && conn.sentAt(0.2) < t1, `sentAt(0.2)=${conn.sentAt(0.2)}`);
  assert.ok(conn.sentAt(0.7) >= t1, "0.7 s is the first sample of the silence, sent after the gap");
  assert.ok(conn.sentAt(0.699) < t1);
  assert.equal(conn.sentAt(99), undefined, "not sent yet");
  assert.ok(start.latencyMs >= 0 && start.latencyMs < 100, `StartOfTurn latency ${start.latencyMs} ms: the stand-in answers at once`);
  const sinceSpeech = end.receivedAt - conn.sentAt(0.699);
  assert.ok(Math.abs(end.latencyMs - sinceSpeech) < 1e-6);
  assert.ok(end.latencyMs >= GAP + HOLD - 5 && end.latencyMs < GAP + HOLD + 250,
    `EndOfTurn latency ${end.latencyMs} ms: want the gap (${GAP}) + the hold (${HOLD}) + a little`);
  for (const t of rec.turns) assert.equal(typeof t.latencyMs, "number", `${t.event} has a latency`);
});

test("errors: Flux's fatal Error, a dropped connection, a refused upgrade, an unreachable server", async (t) => {
  await t.test("Error message: error event with its code, then close", async () => {
    const srv = await fluxStandin({ failAfterSamples: { samples: RATE / 2, code: "BAD_AUDIO", closeCode: 4004 } });
    const conn = connectTurns({ url: srv.url, token: "t", WebSocket, keepAliveMs: 0 });
    const rec = record(conn);
    sendAll(conn, script([[1, 1]]));
    const close = await rec.closed;
    srv.close();
    assert.equal(close.code, 4004);
    assert.equal(close.error.code, "BAD_AUDIO");
    assert.match(close.error.message, /from the stand-in/);
    assert.deepEqual(rec.errors.map((e) => e.code), ["BAD_AUDIO"]);
    assert.equal(rec.names.at(-2), "error");
    assert.equal(rec.names.at(-1), "close");
    assert.equal(srv.upgrades, 1, "no reconnect");
  });
  await t.test("idle: IDLE_TIMEOUT without KeepAlive; KeepAlive keeps a quiet stream open", async () => {
    const srv = await fluxStandin({ idleMs: 500 });
    const quiet = connectTurns({ url: srv.url, token: "t", WebSocket, keepAliveMs: 0 });
    const q = record(quiet);
    const kept = connectTurns({ url: srv.url, token: "t", WebSocket, keepAliveMs: 100 });
    const k = record(kept);
    const close = await q.closed;
    assert.equal(close.error.code, "IDLE_TIMEOUT");
    assert.equal(close.code, 4001);
    assert.equal(close.error.retryable, true);
    await sleep(700);
    assert.equal(kept.state, "open");
    assert.ok(srv.log.some((l) => l.filter((x) => x.msg.type === "KeepAlive").length >= 3), "KeepAlives were sent");
    await kept.closeStream();
    assert.equal((await k.closed).error, undefined);
    srv.close();
  });
  await t.test("connection lost mid-stream: CONNECTION_LOST", async () => {
    const srv = await fluxStandin({ dropAfterSamples: RATE / 4 });
    const conn = connectTurns({ url: srv.url, token: "t", WebSocket, keepAliveMs: 0, reconnect: false });
    const rec = record(conn);
    sendAll(conn, script([[1, 0.5]]));
    const close = await rec.closed;
    srv.close();
    assert.equal(close.error.code, "CONNECTION_LOST");
    assert.deepEqual(rec.errors.map((e) => e.code), ["CONNECTION_LOST"]);
    assert.equal(srv.upgrades, 1);
  });
  await t.test("refused upgrade: the server's code and status", async () => {
    const srv = await fluxStandin({ reject: () => ({ status: 401, code: "INVALID_AUTH", msg: "bad token" }) });
    const conn = connectTurns({ url: srv.url, token: "t", WebSocket });
    const rec = record(conn);
    conn.sendAudio(script([[1, 0.1]]));
    const close = await rec.closed;
    srv.close();
    assert.equal(close.error.code, "INVALID_AUTH");
    assert.equal(close.error.status, 401);
    assert.deepEqual(rec.names, ["error", "close"]);
  });
  await t.test("unreachable server", async () => {
    const conn = connectTurns({ url: "http://127.0.0.1:1", token: "t", WebSocket });
    const close = await new Promise((r) => conn.on("close", r));
    assert.equal(close.error.code, "UNREACHABLE");
  });
  await t.test("a token that cannot be fetched", async () => {
    const conn = connectTurns({ url: "http://127.0.0.1:1", getToken: () => Promise.reject(new Error("grant down")), WebSocket });
    const close = await new Promise((r) => conn.on("close", r));
    assert.equal(close.error.code, "UNREACHABLE");
    assert.match(close.error.message, /grant down/);
  });
  assert.throws(() => connectTurns({ url: "http://h", WebSocket }), { code: "TOKEN" });
});

test("reconnect mid-turn: the audio after the last EndOfTurn is resent, billed once, and the turns go on", async () => {
  // Turn 0 is "w1" (0–0.5 s, ended at 0.9 s); the connection is cut at 1.25 s inside
  // turn 1 ("w2", 1.0–1.5 s); turn 2 is "w3" (2.0–2.3 s).
  const srv = await fluxStandin({ dropAfterSamples: 1.25 * RATE });
  let tokens = 0;
  const conn = connectTurns({ url: srv.url, getToken: () => `t${++tokens}`, WebSocket, keepAliveMs: 0 });
  const rec = record(conn);
  const reconnecting = [];
  conn.on("reconnecting", (e) => reconnecting.push(e));
  const audio = script([[1, 0.5], [0, 0.5], [2, 0.5], [0, 0.5], [3, 0.3], [0, 0.5]]);
  sendAll(conn, audio.subarray(0, 1.2 * RATE));
  await until(() => rec.turns.some((t) => t.event === "StartOfTurn" && t.turnIndex === 1));
  sendAll(conn, audio.subarray(1.2 * RATE));
  await until(() => conn.state === "open" && srv.upgrades === 2);
  await conn.closeStream();
  const close = await rec.closed;
  srv.close();
  assert.equal(close.error, undefined);
  assert.equal(reconnecting.length, 1);
  assert.equal(reconnecting[0].error.code, "CONNECTION_LOST");
  assert.equal(tokens, 2, "a fresh token for the reconnect");
  assert.equal(rec.names.filter((n) => n === "connected").length, 1, "one connected event");
  assert.equal(fluxOrderError(rec.turns), "");
  const ends = rec.turns.filter((t) => t.event === "EndOfTurn");
  assert.deepEqual(ends.map((t) => [t.turnIndex, t.transcript, t.audioWindowStart, t.audioWindowEnd, t.trigger]), [
    [0, "w1", 0, 0.9, "model"], [1, "w2", 1, 1.9, "model"], [2, "w3", 2, 2.7, "model"]]);
  assert.deepEqual(ends[1].words.map((w) => [w.word, w.start, w.end]), [["w2", 1, 1.5]], "word times in stream seconds");
  // The reconnect names the stream, where its audio starts (the end of turn 0) and
  // the turn it continues with; it resends only the audio from there.
  assert.equal(srv.queries[0].get("resume"), null);
  assert.equal(srv.queries[1].get("resume"), "standin");
  assert.equal(srv.queries[1].get("resume_offset_ms"), "900");
  assert.equal(srv.queries[1].get("resume_turn_index"), "1");
  assert.equal(srv.samples[1], audio.length - 0.9 * RATE);
  assert.equal(conn.turnIndex, 3);
});

test("microphone() streams into a turn connection as into connect()", async () => {
  // Web Audio stand-ins (as in microphone.test.mjs): the worklet's frames are posted by hand.
  let node;
  globalThis.AudioContext = class {
    state = "running"; sampleRate = 48000; destination = {};
    audioWorklet = { addModule: async () => {} };
    createMediaStreamSource() { return { connect() {}, disconnect() {} }; }
    createGain() { return { gain: { value: 1 }, connect() {}, disconnect() {} }; }
    async resume() {}
    async close() {}
  };
  globalThis.AudioWorkletNode = class {
    constructor() { this.port = { onmessage: null, postMessage() {} }; node = this; }
    connect() {}
    disconnect() {}
  };
  Object.defineProperty(globalThis, "navigator", {
    configurable: true,
    value: { mediaDevices: { getUserMedia: async () => { const tr = { stop() {}, getSettings: () => ({}) }; return { getTracks: () => [tr], getAudioTracks: () => [tr] }; } } },
  });
  const srv = await fluxStandin();
  const conn = connectTurns({ url: srv.url, token: "t", WebSocket, keepAliveMs: 0 });
  const rec = record(conn);
  const mic = await microphone({ workletURL: "/capture-worklet.js", connection: conn });
  const pcm = script([[7, 0.4], [0, 0.6]]);
  for (let i = 0; i < pcm.length; i += 640) node.port.onmessage({ data: { pcm: pcm.slice(i, i + 640).buffer } });
  await until(() => rec.turns.some((t) => t.event === "EndOfTurn"));
  await mic.stop();
  await conn.closeStream();
  await rec.closed;
  srv.close();
  assert.equal(rec.flow(), "StartOfTurn Update EndOfTurn");
  assert.equal(rec.turns.at(-1).transcript, "w7");
  assert.ok(Math.abs(conn.sentSeconds - 1) < 1e-9, String(conn.sentSeconds));
});
