// A DETERMINISTIC STAND-IN for Earshot's /v2/listen (not Earshot): it speaks Deepgram
// Flux's protocol over `ws` and "hears" PCM16 audio whose sample values say what was
// said: 0 is silence, a run of the value v is the word "wv". Its turn logic is fixed, so
// a test knows exactly which events must come and when (all times are samples of the
// stream, not wall time):
//   - the first speech sample after silence: StartOfTurn (audio_window_start there);
//   - every 0.25 s of audio inside a turn: Update (the turn's words so far);
//   - end_of_turn_confidence is always CONFIDENCE (0.8): after EAGER_MS of silence
//     EagerEndOfTurn when eager_eot_threshold ≤ 0.8, after EOT_MS EndOfTurn ("model")
//     when eot_threshold ≤ 0.8, else EndOfTurn ("timeout") after eot_timeout_ms;
//   - speech after an EagerEndOfTurn: TurnResumed;
//   - ForceEndTurn: EndOfTurn ("manual") inside a turn; CloseStream: EndOfTurn
//     ("close") inside a turn, then close 1000; Configure: ConfigureSuccess or
//     ConfigureFailure with Earshot's ranges; an unknown type: Error UNKNOWN_MESSAGE,
//     close 4000. The real server is tested in live.test.mjs and turns-live.test.mjs.
import { createServer } from "node:http";
import { WebSocketServer } from "ws";

export const RATE = 16000;
export const CONFIDENCE = 0.8;
export const EAGER_MS = 200;
export const EOT_MS = 400;

/**
 * Starts the stand-in on a free port. Options: reject(n) → {status, code, msg} refuses
 * the n-th upgrade; delayMs(msg) → ms to hold a message back before it (and all after
 * it) go out; idleMs: Error IDLE_TIMEOUT and close 4001 after that long without a frame;
 * failAfterSamples: {samples, code, closeCode}: a fatal Error once that much audio came;
 * dropAfterSamples: the first connection's socket is cut (no close frame) once that much
 * audio came. A connection with resume_turn_index counts its turns from there (as
 * Earshot does); its times start at 0, like any connection's.
 * The returned state records queries, tokens, and per connection the text frames in
 * order with the audio samples received before each (log), the messages sent (sent),
 * the audio samples received (samples).
 */
export function fluxStandin({ reject, delayMs, idleMs, failAfterSamples, dropAfterSamples } = {}) {
  const http = createServer();
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (ps) => [...ps][0] });
  const state = { upgrades: 0, tokens: [], queries: [], sockets: [], log: [], sent: [], samples: [] };
  http.on("upgrade", (req, sock, head) => {
    const q = new URL(req.url, "http://x").searchParams;
    state.queries.push(q);
    state.paths = [...(state.paths ?? []), new URL(req.url, "http://x").pathname];
    const tok = (req.headers["sec-websocket-protocol"] || "").split(",").map((s) => s.trim())[1] ?? q.get("token");
    state.tokens.push(tok);
    const r = reject?.(state.upgrades);
    state.upgrades++;
    if (r) {
      const body = JSON.stringify({ err_code: r.code, err_msg: r.msg });
      sock.end(`HTTP/1.1 ${r.status} X\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
      return;
    }
    wss.handleUpgrade(req, sock, head, (ws) => session(ws, q));
  });

  function session(ws, q) {
    state.sockets.push(ws);
    const conn = state.samples.push(0) - 1;
    const log = [];
    const sentMsgs = [];
    state.log.push(log);
    state.sent.push(sentMsgs);
    const th = {
      eot: q.has("eot_threshold") ? Number(q.get("eot_threshold")) : 0.7,
      eager: q.has("eager_eot_threshold") ? Number(q.get("eager_eot_threshold")) : undefined,
      timeoutMs: q.has("eot_timeout_ms") ? Number(q.get("eot_timeout_ms")) : 5000,
    };
    let seq = 0;
    let out = Promise.resolve();
    let closed = false;
    const send = (m) => {
      const msg = { ...m, request_id: "standin", sequence_id: seq++ };
      const d = delayMs?.(msg) ?? 0;
      out = out.then(async () => {
        if (d > 0) await new Promise((r) => setTimeout(r, d));
        if (ws.readyState === 1) {
          ws.send(JSON.stringify(msg));
          sentMsgs.push(msg);
        }
      });
    };
    const close = (code) => {
      closed = true;
      out = out.then(() => ws.close(code));
    };
    const fatal = (code, description, closeCode) => {
      send({ type: "Error", code, description });
      close(closeCode);
    };
    let idle;
    const touch = () => {
      if (!idleMs) return;
      clearTimeout(idle);
      idle = setTimeout(() => fatal("IDLE_TIMEOUT", `no audio, KeepAlive or control message within ${idleMs}ms`, 4001), idleMs);
    };
    touch();
    ws.on("close", () => clearTimeout(idle));
    send({ type: "Connected" });

    let n = 0; // samples received
    let phase = "between"; // between | ongoing | awaiting
    let index = q.has("resume_turn_index") ? Number(q.get("resume_turn_index")) : 0;
    let turnStart = 0;
    let lastSpeech = 0;
    let nextUpdate = 0;
    let words = [];
    const turn = (event, extra = {}) => send({
      type: "TurnInfo", event, turn_index: index, audio_window_start: turnStart / RATE, audio_window_end: n / RATE,
      transcript: event === "StartOfTurn" || event === "TurnResumed" ? "" : words.map((w) => "w" + w.v).join(" "),
      words: event === "StartOfTurn" || event === "TurnResumed" ? [] : words.map((w) => ({ word: "w" + w.v, confidence: 0.9, start: w.start / RATE, end: w.end / RATE })),
      end_of_turn_confidence: 0, ...extra,
    });
    const endTurn = (trigger) => {
      turn("EndOfTurn", { trigger, end_of_turn_confidence: trigger === "model" || trigger === "timeout" ? CONFIDENCE : 0 });
      phase = "between";
      index++;
    };

    const sample = (v) => {
      if (v !== 0) {
        if (phase === "between") {
          phase = "ongoing";
          turnStart = n;
          words = [];
          nextUpdate = n + RATE / 4;
          turn("StartOfTurn");
        } else if (phase === "awaiting") {
          phase = "ongoing";
          turn("TurnResumed");
          nextUpdate = n + RATE / 4;
        }
        const last = words[words.length - 1];
        if (last && last.v === v && last.end === n) last.end = n + 1;
        else words.push({ v, start: n, end: n + 1 });
        lastSpeech = n + 1;
      }
      n++;
      if (phase === "between") return;
      if (phase === "ongoing" && n >= nextUpdate) {
        nextUpdate += RATE / 4;
        turn("Update");
      }
      const silentMs = ((n - lastSpeech) * 1000) / RATE;
      if (phase === "ongoing" && th.eager !== undefined && th.eager <= CONFIDENCE && silentMs === EAGER_MS) {
        phase = "awaiting";
        turn("EagerEndOfTurn", { end_of_turn_confidence: CONFIDENCE });
      }
      if (th.eot <= CONFIDENCE && silentMs === EOT_MS) endTurn("model");
      else if (silentMs === th.timeoutMs) endTurn("timeout");
    };

    ws.on("message", (data, isBinary) => {
      if (closed) return;
      touch();
      if (isBinary) {
        const pcm = new Int16Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
        for (const v of pcm) {
          sample(v);
          state.samples[conn] = n;
          if (failAfterSamples && n === failAfterSamples.samples) {
            fatal(failAfterSamples.code, failAfterSamples.code + " from the stand-in", failAfterSamples.closeCode);
            return;
          }
          if (dropAfterSamples && conn === 0 && n === dropAfterSamples) {
            closed = true;
            ws.terminate();
            return;
          }
        }
        return;
      }
      const m = JSON.parse(data.toString());
      log.push({ samples: n, msg: m });
      switch (m.type) {
        case "KeepAlive":
          break;
        case "ForceEndTurn":
          if (phase !== "between") endTurn("manual");
          break;
        case "CloseStream":
          if (phase !== "between") endTurn("close");
          close(1000);
          break;
        case "Configure": {
          const t = { ...th };
          const c = m.thresholds ?? {};
          if (c.eot_threshold !== undefined) t.eot = Number(c.eot_threshold);
          if (c.eager_eot_threshold !== undefined) t.eager = Number(c.eager_eot_threshold);
          if (c.eot_timeout_ms !== undefined) t.timeoutMs = Number(c.eot_timeout_ms);
          let why = "";
          if (m.keyterms !== undefined) why = "keyterms cannot change mid-stream on Earshot";
          else if (!(t.eot >= 0.5 && t.eot <= 1)) why = `parameter eot_threshold: ${t.eot} is out of range 0.5..1`;
          else if (t.eager !== undefined && !(t.eager >= 0.3 && t.eager <= 0.9)) why = `parameter eager_eot_threshold: ${t.eager} is out of range 0.3..0.9`;
          else if (t.eager !== undefined && t.eager > t.eot) why = "parameter eager_eot_threshold: above eot_threshold";
          else if (!(t.timeoutMs >= 500 && t.timeoutMs <= 60000)) why = `parameter eot_timeout_ms: ${t.timeoutMs} is out of range 500..60000`;
          if (why) {
            send({ type: "ConfigureFailure", description: why });
          } else {
            Object.assign(th, t);
            const thresholds = { eot_threshold: th.eot, eot_timeout_ms: th.timeoutMs };
            if (th.eager !== undefined) thresholds.eager_eot_threshold = th.eager;
            send({ type: "ConfigureSuccess", thresholds, keyterms: [] });
          }
          break;
        }
        default:
          fatal("UNKNOWN_MESSAGE", `unknown message type ${JSON.stringify(m.type)}`, 4000);
      }
    });
  }

  return new Promise((ok) => http.listen(0, "127.0.0.1", () => {
    state.url = `http://127.0.0.1:${http.address().port}`;
    state.close = () => { for (const s of state.sockets) s.terminate(); wss.close(); http.close(); };
    ok(state);
  }));
}

/** PCM16 audio from a script: [[value, seconds], ...] (value 0: silence). */
export function script(parts) {
  const n = parts.reduce((s, [, sec]) => s + Math.round(sec * RATE), 0);
  const a = new Int16Array(n);
  let o = 0;
  for (const [v, sec] of parts) {
    const k = Math.round(sec * RATE);
    a.fill(v, o, o + k);
    o += k;
  }
  return a;
}
