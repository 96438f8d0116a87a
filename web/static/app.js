// Earshot demo page: microphone or WAV file → /v1/listen → live transcript.
// No framework; the SDK (web/sdk, built into /sdk/earshot.js) does the protocol.
import { connect, microphone, EarshotError } from "./sdk/earshot.js";

const $ = (id) => document.getElementById(id);
const ui = {
  mic: $("mic"), micLabel: $("mic-label"), model: $("model"), file: $("file"), level: $("level"),
  status: $("status"), error: $("error"), finals: $("finals"), partial: $("partial"),
  latency: $("latency"), sent: $("sent"), session: $("session"), clear: $("clear"),
};

const origin = location.origin;
const FRAME_MS = 40;

let busy = null; // {conn, mic?, fileTimer?, kind: "mic"|"file"}
let latencies = [];

function setStatus(text) {
  ui.status.textContent = text;
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
  ui.file.disabled = on;
  if (!on) ui.level.value = 0;
}

function openConnection() {
  latencies = [];
  const conn = connect({
    url: origin,
    getToken: grant,
    model: ui.model.value || undefined,
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
    ui.partial.textContent = ev.transcript ? (ui.finals.textContent ? " " : "") + ev.transcript : "";
    if (ev.newWords && ev.latencyMs !== undefined) {
      latencies.push(ev.latencyMs);
      if (latencies.length > 50) latencies.shift();
      ui.latency.textContent = `${Math.round(median(latencies))} ms (${Math.round(ev.latencyMs)} ms)`;
    }
    ui.sent.textContent = conn.sentSeconds.toFixed(1) + " s";
  });
  conn.on("final", (ev) => {
    ui.partial.textContent = "";
    if (ev.transcript) ui.finals.append((ui.finals.textContent ? " " : "") + ev.transcript);
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

async function startMic() {
  showError("");
  // Safari wants the AudioContext made inside the click handler, before any await.
  const AC = window.AudioContext || window.webkitAudioContext;
  const ctx = AC ? new AC() : undefined;
  setBusy("mic");
  setStatus("Starting the microphone…");
  const conn = openConnection();
  busy = { kind: "mic", conn };
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
    if (conn.state === "open") setStatus("Connected. Listening…");
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
  busy = { kind: "file", conn };
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
});

(async () => {
  try {
    const n = await loadModels();
    if (n === 0) {
      setStatus("");
      showError("The server offers no speech recognition models. Load one (earshot models pull tiny.en) and reload.");
      return;
    }
    ui.model.disabled = false;
    ui.mic.disabled = false;
    ui.file.disabled = false;
    setStatus("Ready. Press Start and speak, or pick a WAV file.");
  } catch (err) {
    setStatus("");
    showError(explain(err));
    ui.model.textContent = "";
  }
})();
