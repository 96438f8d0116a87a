// Earshot demo page: microphone or WAV file → /v1/listen → live transcript, or, in
// voice agent mode, → /v2/listen → turns (StartOfTurn … EndOfTurn) with the latency
// of each event. No framework; the SDK (web/sdk, built into /sdk/earshot.js) does the
// protocol and keeps the send time of the audio that the latencies are measured from.
import { connect, connectTurns, microphone, joinText, EarshotError } from "./sdk/earshot.js";

const $ = (id) => document.getElementById(id);
const ui = {
  mic: $("mic"), micLabel: $("mic-label"), model: $("model"), language: $("language"), languageNote: $("language-note"),
  file: $("file"), level: $("level"), transcript: $("transcript"),
  status: $("status"), error: $("error"), finals: $("finals"), partial: $("partial"),
  latency: $("latency"), sent: $("sent"), session: $("session"), clear: $("clear"),
  modeTranscript: $("mode-transcript"), modeAgent: $("mode-agent"), eot: $("eot"), eager: $("eager"),
  forceEnd: $("force-end"), turns: $("turns"), sotLatency: $("sot-latency"), eotLatency: $("eot-latency"),
};

const origin = location.origin;
const FRAME_MS = 40;

let busy = null; // {conn, mic?, fileTimer?, kind: "mic"|"file", agent}
let latencies = [];
// Voice agent mode: latencies (ms) of this run's StartOfTurns and EndOfTurns.
let turnLatencies = { start: [], end: [] };
let turnOpen = false; // between a StartOfTurn and its EndOfTurn
// Which models decode more than English (from GET /v1/models), by name.
const multilingual = new Map();
// The language chosen for multilingual models (kept while an English-only one is chosen).
let chosenLanguage = "en";
// The language the server detected in this run (language=multi), e.g. "zh".
let detectedLanguage = "";

const agentMode = () => ui.modeAgent.checked;

function showMode() {
  const agent = agentMode();
  for (const el of document.querySelectorAll(".agent-only")) el.hidden = !agent;
  for (const el of document.querySelectorAll(".transcript-only")) el.hidden = agent;
  ui.clear.textContent = agent ? "Clear turns" : "Clear transcript";
}

// Auto-detect: the detected language follows the status text.
function setStatus(text) {
  let suffix = "";
  if (detectedLanguage && languageChoice() === "multi") suffix = ` Detected language: ${languageName(detectedLanguage)} (${detectedLanguage}).`;
  ui.status.textContent = text ? text + suffix : "";
}

function languageName(code) {
  try {
    return new Intl.DisplayNames([navigator.language || "en", "en"], { type: "language" }).of(code) || code;
  } catch {
    return code;
  }
}

// Does the chosen model decode more than English? Unknown models: by name (tiny.en,
// base.en-q8_0, … are English-only).
function modelIsMultilingual(name = ui.model.value) {
  return multilingual.has(name) ? multilingual.get(name) : Boolean(name) && !/\.en\b/.test(name);
}

// The Language select: enabled for a multilingual model, showing the choice kept for
// it; for an English-only model disabled and showing English.
function showLanguage() {
  const multi = modelIsMultilingual();
  ui.language.disabled = Boolean(busy) || !multi || ui.model.disabled;
  ui.language.value = multi ? chosenLanguage : "en";
  ui.languageNote.textContent = multi
    ? "Auto-detect finds the language of each utterance."
    : `${ui.model.value || "This model"} decodes English only; choose a multilingual model to pick another language.`;
}

// The language for the stream: "en", "zh-CN", "zh-TW" or "multi" (Auto-detect); English
// for an English-only model.
function languageChoice() {
  return modelIsMultilingual() ? chosenLanguage : "en";
}

// Marks the transcript with its language (screen readers, CJK fonts).
function markLanguage(code) {
  for (const el of [ui.transcript, ui.turns]) {
    if (code && code !== "multi") el.lang = code;
    else el.removeAttribute("lang");
  }
}

function detected(code) {
  if (!code || code === detectedLanguage) return;
  detectedLanguage = code;
  markLanguage(code);
  if (languageChoice() === "multi") setStatus(ui.status.textContent.replace(/ Detected language: .*$/, ""));
}

function showError(text) {
  ui.error.textContent = text;
  ui.error.hidden = !text;
}

// What to tell the user for an error code (SDK codes mirror the server's).
function explain(err) {
  const code = err && err.code;
  switch (code) {
    case "MIC_DENIED":
      return "Microphone access was denied. Allow the microphone for this site (the icon in the address bar or site settings) and press Start again.";
    case "MIC_NOT_FOUND":
      return "No microphone was found. Connect one, or stream a WAV file instead.";
    case "MIC_UNAVAILABLE":
      return err.message + " Open the demo over https or on localhost.";
    case "UNREACHABLE":
      return `The Earshot server at ${origin} cannot be reached. Check that it is running and that your network is up.`;
    case "NO_CAPACITY":
      return "The server has no free transcription capacity right now (503). Try again in a few seconds.";
    case "SHUTTING_DOWN":
      return "The server is restarting (503). Try again in a few seconds.";
    case "QUOTA_EXHAUSTED":
    case "INSUFFICIENT_BALANCE":
      return "The demo's usage quota is used up (402). Try again later.";
    case "TOO_MANY_STREAMS":
      return "Too many streams are open for the demo (429). Close other tabs using it, or wait a moment and retry.";
    case "RATE_LIMITED":
      return "Too many requests from this address (429). Wait a moment and retry.";
    case "INVALID_AUTH":
      return "The server refused the demo token. Reload the page.";
    case "CONNECTION_REFUSED":
      return "The server refused the connection: it may be out of capacity, over quota or at its stream limit. Try again shortly.";
    case "DEMO_OFF":
      return "This server is not running in demo mode (start it with earshot serve --demo).";
    default:
      return (err && err.message) || String(err);
  }
}

// POST /demo/grant → a short-lived token.
async function grant() {
  let res;
  try {
    res = await fetch(origin + "/demo/grant", { method: "POST", cache: "no-store" });
  } catch {
    throw new EarshotError("UNREACHABLE", "network error");
  }
  if (res.status === 404 || res.status === 405) throw new EarshotError("DEMO_OFF", "demo mode is off", { status: res.status });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    const code = body.err_code || body.code || (res.status === 429 ? "RATE_LIMITED" : "INTERNAL");
    throw new EarshotError(code, body.err_msg || body.message || `grant failed (HTTP ${res.status})`, { status: res.status });
  }
  const tok = body.access_token || body.token;
  if (!tok) throw new EarshotError("INTERNAL", "the grant response has no token");
  return tok;
}

// GET /v1/models: a bare array, {models: [...]}, {stt: [...]} or {data: [...]}.
function modelList(body) {
  const list = Array.isArray(body) ? body : body.models || body.stt || body.data || [];
  return list
    .map((m) => (typeof m === "string" ? { name: m } : m))
    .filter((m) => m && m.name)
    .filter((m) => (m.kind ? m.kind === "asr" : !/vad|silero/i.test(m.name)));
}

async function loadModels() {
  const tok = await grant();
  let res;
  try {
    res = await fetch(origin + "/v1/models", { headers: { Authorization: "Bearer " + tok }, cache: "no-store" });
  } catch {
    throw new EarshotError("UNREACHABLE", "network error");
  }
  if (!res.ok) throw new EarshotError("INTERNAL", `could not list models (HTTP ${res.status})`, { status: res.status });
  const models = modelList(await res.json());
  ui.model.textContent = "";
  for (const m of models) {
    const opt = document.createElement("option");
    opt.value = m.name;
    let langs = Array.isArray(m.languages) ? m.languages.join(", ") : m.languages || "";
    if (langs) multilingual.set(m.name, Array.isArray(m.languages) ? m.languages.length > 1 : /^multi/i.test(langs) || langs.includes(","));
    if (/^multilingual/i.test(langs) || langs.length > 24) langs = "multilingual"; // not "multilingual (99 languages)"
    opt.textContent = langs ? `${m.name} (${langs})` : m.name;
    ui.model.append(opt);
  }
  const preferred = models.find((m) => m.name === "tiny.en") || models[0];
  if (preferred) ui.model.value = preferred.name;
  return models.length;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
}

function setBusy(kind) {
  const on = Boolean(kind);
  ui.mic.setAttribute("aria-pressed", String(on));
  ui.mic.setAttribute("aria-label", on ? (kind === "file" ? "Stop streaming the file" : "Stop microphone") : "Start microphone");
  ui.micLabel.textContent = on ? "Stop" : "Start";
  ui.model.disabled = on;
  ui.language.disabled = on || !modelIsMultilingual();
  ui.file.disabled = on;
  ui.modeTranscript.disabled = on;
  ui.modeAgent.disabled = on;
  ui.forceEnd.disabled = !on || !agentMode();
  if (!on) ui.level.value = 0;
}

// A new run: forget the language detected in the last one.
function startLanguage() {
  detectedLanguage = "";
  markLanguage(languageChoice());
}

function openConnection() {
  startLanguage();
  if (agentMode()) return openTurns();
  latencies = [];
  const language = languageChoice();
  const conn = connect({
    url: origin,
    getToken: grant,
    model: ui.model.value || undefined,
    // English-only models take English only: the server's default then.
    language: modelIsMultilingual() ? language : undefined,
    interimResults: true,
    vadEvents: true,
    endpointing: 300,
    utteranceEndMs: 1000,
  });
  conn.on("open", (ev) => {
    setStatus(ev.attempt > 1 ? "Reconnected; resending the audio after the last final." : "Connected. Listening…");
    showError("");
  });
  conn.on("partial", (ev) => {
    detected(ev.detectedLanguage);
    // No space before Chinese or Japanese text (joinText).
    const before = ui.finals.textContent;
    ui.partial.textContent = ev.transcript ? joinText(before, ev.transcript).slice(before.length) : "";
    if (ev.newWords && ev.latencyMs !== undefined) {
      latencies.push(ev.latencyMs);
      if (latencies.length > 50) latencies.shift();
      ui.latency.textContent = `${Math.round(median(latencies))} ms (${Math.round(ev.latencyMs)} ms)`;
    }
    ui.sent.textContent = conn.sentSeconds.toFixed(1) + " s";
  });
  conn.on("final", (ev) => {
    ui.partial.textContent = "";
    detected(ev.detectedLanguage);
    const before = ui.finals.textContent;
    if (ev.transcript) ui.finals.append(joinText(before, ev.transcript).slice(before.length));
    ui.session.textContent = ev.requestId ? ev.requestId.slice(0, 8) : "–";
  });
  conn.on("speechstart", () => setStatus("Speech detected…"));
  conn.on("reconnecting", (ev) => setStatus(`Connection lost (${ev.error.message}); reconnecting, attempt ${ev.attempt}…`));
  conn.on("error", (err) => {
    if (!err.fatal) setStatus("Server notice: " + err.message);
  });
  conn.on("close", (ev) => {
    if (ev.error) showError(explain(ev.error));
    setStatus(ev.error ? "Stopped." : "Done.");
    stop(false);
  });
  return conn;
}

// The thresholds from the knobs: eot_threshold, and eager_eot_threshold when one is
// given (0 in a Configure turns it off). The server checks the ranges and says which
// value it refused.
function thresholds() {
  const eot = ui.eot.value.trim() === "" ? undefined : Number(ui.eot.value);
  const eager = ui.eager.value.trim() === "" ? undefined : Number(ui.eager.value);
  return { eot, eager };
}

function fmtMs(ms) {
  return ms === undefined ? "–" : `${Math.round(ms)} ms`;
}

function showTurnLatencies() {
  const show = (xs) => (xs.length ? `${Math.round(median(xs))} ms (${Math.round(xs[xs.length - 1])} ms, ${xs.length})` : "–");
  ui.sotLatency.textContent = show(turnLatencies.start);
  ui.eotLatency.textContent = show(turnLatencies.end);
}

// One row per turn: its transcript, its audio window, and its events in the order they
// came, each with its latency (runs of Update are one entry with a count).
function turnRow(index) {
  let row = ui.turns.querySelector(`li.turn[data-turn="${index}"]`);
  if (row) return row;
  row = document.createElement("li");
  row.className = "turn";
  row.dataset.turn = String(index);
  const head = document.createElement("div");
  head.className = "turn-head";
  const n = document.createElement("span");
  n.className = "turn-n";
  n.textContent = `Turn ${index}`;
  const win = document.createElement("span");
  win.className = "turn-window";
  head.append(n, win);
  const text = document.createElement("p");
  text.className = "turn-text";
  const events = document.createElement("ol");
  events.className = "turn-events";
  row.append(head, text, events);
  ui.turns.append(row);
  return row;
}

function renderTurn(ev) {
  const row = turnRow(ev.turnIndex);
  row.dataset.state = ev.event === "EndOfTurn" ? "ended" : ev.event === "EagerEndOfTurn" ? "eager" : "ongoing";
  row.querySelector(".turn-window").textContent = `${ev.audioWindowStart.toFixed(2)}–${ev.audioWindowEnd.toFixed(2)} s`;
  const text = row.querySelector(".turn-text");
  if (ev.event !== "StartOfTurn" && ev.event !== "TurnResumed" && (ev.transcript || ev.event === "EndOfTurn")) text.textContent = ev.transcript;
  const list = row.querySelector(".turn-events");
  let item = list.lastElementChild;
  if (!(ev.event === "Update" && item && item.dataset.event === "Update")) {
    item = document.createElement("li");
    item.className = "ev";
    item.dataset.event = ev.event;
    item.dataset.count = "0";
    list.append(item);
  }
  const count = Number(item.dataset.count) + 1;
  item.dataset.count = String(count);
  if (ev.latencyMs !== undefined) item.dataset.latencyMs = String(Math.round(ev.latencyMs));
  else delete item.dataset.latencyMs;
  if (ev.trigger) item.dataset.trigger = ev.trigger;
  let label = ev.event + (count > 1 ? ` ×${count}` : "");
  if (ev.trigger) label += ` (${ev.trigger})`;
  if (ev.event === "EagerEndOfTurn" || ev.event === "EndOfTurn") label += ` eot ${ev.endOfTurnConfidence.toFixed(2)}`;
  item.textContent = "";
  const name = document.createElement("span");
  name.className = "ev-name";
  name.textContent = label;
  const lat = document.createElement("span");
  lat.className = "ev-latency";
  lat.textContent = fmtMs(ev.latencyMs);
  item.append(name, " ", lat);
  item.title = `sequence ${ev.sequenceId}; latency from the audio at ${ev.latencyFrom.toFixed(2)} s of the stream`;
  if (ev.latencyMs !== undefined) {
    if (ev.event === "StartOfTurn") turnLatencies.start.push(ev.latencyMs);
    // Turns that ended by themselves with words: what an agent would answer.
    if (ev.event === "EndOfTurn" && (ev.trigger === "model" || ev.trigger === "timeout") && ev.transcript) turnLatencies.end.push(ev.latencyMs);
    showTurnLatencies();
  }
  if (row === ui.turns.lastElementChild) ui.turns.scrollTop = ui.turns.scrollHeight; // follow the newest turn
}

function openTurns() {
  turnLatencies = { start: [], end: [] };
  turnOpen = false;
  showTurnLatencies();
  const { eot, eager } = thresholds();
  const language = languageChoice();
  const conn = connectTurns({
    url: origin,
    getToken: grant,
    model: ui.model.value || undefined,
    // A multilingual model decodes the hinted language; without a hint (Auto-detect)
    // the server is asked to find it (TurnInfo languages). English-only models take none.
    languageHint: modelIsMultilingual() && language !== "multi" ? language : undefined,
    eotThreshold: eot,
    eagerEotThreshold: eager,
  });
  conn.on("connected", (ev) => {
    setStatus("Connected. Listening for turns…");
    showError("");
    ui.session.textContent = ev.requestId ? ev.requestId.slice(0, 8) : "–";
  });
  conn.on("turn", (ev) => {
    if (ev.languages && ev.languages.length) detected(ev.languages[0]);
    if (ev.event === "StartOfTurn") turnOpen = true;
    if (ev.event === "EndOfTurn") turnOpen = false;
    renderTurn(ev);
    ui.sent.textContent = conn.sentSeconds.toFixed(1) + " s";
    if (ev.event === "StartOfTurn" || ev.event === "TurnResumed") setStatus(`Turn ${ev.turnIndex}: speaking…`);
    if (ev.event === "EagerEndOfTurn") setStatus(`Turn ${ev.turnIndex}: probably done (an agent could start its answer)…`);
    if (ev.event === "EndOfTurn") setStatus(`Turn ${ev.turnIndex} ended (${ev.trigger}). Listening…`);
  });
  conn.on("configuresuccess", (ev) => {
    const t = ev.thresholds;
    setStatus(`Thresholds now: end of turn at ${t.eotThreshold}, eager ${t.eagerEotThreshold ?? "off"}, timeout ${t.eotTimeoutMs} ms.`);
    showError("");
  });
  conn.on("configurefailure", (ev) => showError("The server kept the old thresholds: " + ev.description));
  conn.on("close", (ev) => {
    if (ev.error) showError(explain(ev.error));
    setStatus(ev.error ? "Stopped." : "Done.");
    stop(false);
  });
  return conn;
}

// A knob changed while a voice agent stream runs: Configure it mid-stream.
function configureTurns() {
  if (!busy || !busy.agent) return;
  const { eot, eager } = thresholds();
  const c = {};
  if (eot !== undefined) c.eotThreshold = eot;
  c.eagerEotThreshold = eager ?? 0; // 0: eager end of turn off
  busy.conn.configure(c);
}

async function startMic() {
  showError("");
  // Safari wants the AudioContext made inside the click handler, before any await.
  const AC = window.AudioContext || window.webkitAudioContext;
  const ctx = AC ? new AC() : undefined;
  setBusy("mic");
  setStatus("Starting the microphone…");
  const conn = openConnection();
  busy = { kind: "mic", conn, agent: agentMode() };
  try {
    const mic = await microphone({
      workletURL: new URL("capture-worklet.js", location.href),
      audioContext: ctx,
      connection: conn,
      frameMs: FRAME_MS,
      onLevel: (rms) => { ui.level.value = Math.min(1, rms * 4); },
    });
    if (!busy || busy.conn !== conn) {
      await mic.stop();
      return;
    }
    busy.mic = mic;
    busy.ctx = ctx;
    if (conn.state === "open") setStatus(busy.agent ? "Connected. Listening for turns…" : "Connected. Listening…");
  } catch (err) {
    if (ctx) ctx.close().catch(() => {});
    conn.abort();
    busy = null;
    setBusy(null);
    showError(explain(err));
    setStatus("Stopped.");
  }
}

// Decode any browser-supported file and resample to 16 kHz mono PCM16 with an
// OfflineAudioContext (the browser's own band-limited resampler).
async function decodeTo16k(file) {
  const data = await file.arrayBuffer();
  const AC = window.AudioContext || window.webkitAudioContext;
  const ctx = new AC();
  let buf;
  try {
    buf = await new Promise((resolve, reject) => {
      const p = ctx.decodeAudioData(data, resolve, reject);
      if (p && p.then) p.then(resolve, reject);
    });
  } finally {
    ctx.close().catch(() => {});
  }
  const len = Math.ceil(buf.duration * 16000);
  const off = new OfflineAudioContext(1, len, 16000);
  const src = off.createBufferSource();
  src.buffer = buf; // channels are down-mixed to the context's one channel
  src.connect(off.destination);
  src.start();
  const out = (await off.startRendering()).getChannelData(0);
  const pcm = new Int16Array(out.length);
  for (let i = 0; i < out.length; i++) {
    const v = Math.max(-1, Math.min(1, out[i]));
    pcm[i] = v < 0 ? v * 32768 : v * 32767;
  }
  return pcm;
}

async function startFile(file) {
  showError("");
  setBusy("file");
  setStatus(`Decoding ${file.name}…`);
  let pcm;
  try {
    pcm = await decodeTo16k(file);
  } catch (err) {
    setBusy(null);
    showError(`Could not decode ${file.name} as audio: ${err && err.message ? err.message : err}`);
    setStatus("Stopped.");
    return;
  }
  const conn = openConnection();
  busy = { kind: "file", conn, agent: agentMode() };
  setStatus(`Streaming ${file.name} (${(pcm.length / 16000).toFixed(1)} s) in real time…`);
  const frame = (16000 * FRAME_MS) / 1000;
  const t0 = performance.now();
  let i = 0;
  const tick = () => {
    if (!busy || busy.conn !== conn) return;
    // Send what real time allows so far (self-correcting for timer drift).
    const due = Math.min(pcm.length, Math.floor(((performance.now() - t0) / 1000) * 16000) + frame);
    while (i < due) {
      const chunk = pcm.subarray(i, Math.min(i + frame, pcm.length));
      conn.sendAudio(chunk);
      let sum = 0;
      for (let k = 0; k < chunk.length; k++) sum += (chunk[k] / 32768) ** 2;
      ui.level.value = Math.min(1, Math.sqrt(sum / chunk.length) * 4);
      i += chunk.length;
    }
    if (i >= pcm.length) {
      ui.level.value = 0;
      if (busy.agent && turnOpen) {
        // Silence after the file, in real time, until its last turn ends (by the model
        // or at eot_timeout_ms, at most 10 s), as after a speaker: a CloseStream now
        // would end the turn early.
        busy.tailEnd ??= performance.now() + 11000;
        if (performance.now() < busy.tailEnd) {
          conn.sendAudio(new Int16Array(frame));
          busy.fileTimer = setTimeout(tick, FRAME_MS);
          return;
        }
      }
      setStatus("File sent; waiting for the last results…");
      conn.close();
      return;
    }
    busy.fileTimer = setTimeout(tick, FRAME_MS);
  };
  tick();
}

// stop ends the current run. With graceful, the stream is closed with CloseStream
// so the last words still arrive as finals.
async function stop(graceful) {
  const b = busy;
  if (!b) return;
  busy = null;
  if (b.fileTimer) clearTimeout(b.fileTimer);
  if (b.mic) await b.mic.stop().catch(() => {});
  if (b.ctx && b.ctx.state !== "closed") b.ctx.close().catch(() => {});
  setBusy(null);
  if (graceful) {
    setStatus("Finishing…");
    await b.conn.close();
  }
}

ui.mic.addEventListener("click", () => {
  if (busy) void stop(true);
  else void startMic();
});
ui.file.addEventListener("change", () => {
  const f = ui.file.files && ui.file.files[0];
  ui.file.value = "";
  if (f && !busy) void startFile(f);
});
ui.clear.addEventListener("click", () => {
  ui.finals.textContent = "";
  ui.partial.textContent = "";
  ui.turns.textContent = "";
});
ui.model.addEventListener("change", showLanguage);
ui.language.addEventListener("change", () => {
  if (modelIsMultilingual()) chosenLanguage = ui.language.value;
  detectedLanguage = "";
});
ui.modeTranscript.addEventListener("change", showMode);
ui.modeAgent.addEventListener("change", showMode);
ui.eot.addEventListener("change", configureTurns);
ui.eager.addEventListener("change", configureTurns);
ui.forceEnd.addEventListener("click", () => {
  if (busy && busy.agent) busy.conn.forceEndTurn();
});
showMode();

(async () => {
  try {
    const n = await loadModels();
    if (n === 0) {
      setStatus("");
      showError("The server offers no speech recognition models. Load one (earshot models pull tiny.en) and reload.");
      return;
    }
    ui.model.disabled = false;
    showLanguage();
    ui.mic.disabled = false;
    ui.file.disabled = false;
    ui.modeTranscript.disabled = false;
    ui.modeAgent.disabled = false;
    setStatus("Ready. Press Start and speak, or pick a WAV file.");
  } catch (err) {
    setStatus("");
    showError(explain(err));
    ui.model.textContent = "";
  }
})();
