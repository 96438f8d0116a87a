// Browser end-to-end test of the demo page: headless Chromium with a fake
// microphone that plays the JFK clip, against a running `earshot serve --demo`
// (EARSHOT_URL, started by scripts/browser-test.sh). Asserts partial text shows
// before the final, the microphone track has the SDK's audio processing (echo
// cancellation only), and the finals hold the clip (within 2 word edits); saves a screenshot.
// Then the voice agent mode (/v2/listen) with the clip and trailing silence: turn rows in
// Flux's order (StartOfTurn, Updates, EagerEndOfTurn, TurnResumed, EndOfTurn), an
// EndOfTurn with the clip's sentence, and a latency in ms on every event; prints them.
// Then Mandarin (needs the multilingual base model, which scripts/browser-test.sh loads):
// base + 中文 简体 (and Auto-detect, and the voice agent with language_hint) with a
// human-transcribed AISHELL-1 clip fed through the page's WAV file input; the transcript
// must be Simplified Chinese within a CER bound, without U+FFFD or spaces between
// characters.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";
import { CLIP, SENTENCE, jfkWav, normalise, readWav, repoRoot, testdataDir, wordDistance } from "../helpers/server.mjs";
import { fluxOrderError } from "../helpers/turns.mjs";

// The Mandarin clip: AISHELL-1 test utterance BAC009S0724W0121 (read speech, 4.3 s), the
// one clip in speech-zh whose reference is a human transcript (provenance.tsv
// reference_quality "human"); its reference comes from manifest.tsv.
const ZH_CLIP = "aishell1_BAC009S0724W0121";
// Character error rate bound. Measured with base (f16) on 2 CPU cores: 0.167 (2 of 12
// characters: 广州市佛地产中间协会分析 for 广州市房地产中介协会分析) through the page with
// 中文 简体, with Auto-detect and in the voice agent mode alike, as /v1/listen gives the
// clip from Node. Bound = measured + a generous margin (about 3 characters more) for
// decoding that varies with timing (where the partials and the final cut the audio).
const ZH_MAX_CER = 0.45;
const HAN = /\p{Script=Han}/u;

const base = process.env.EARSHOT_URL;
if (!base && process.env.NODE_TEST_CONTEXT) {
  // Picked up by `node --test test/`: this test needs the server and Chromium that
  // scripts/browser-test.sh provides, so it only reports itself skipped here.
  const { test } = await import("node:test");
  test("demo page in Chromium", { skip: "EARSHOT_URL is not set: scripts/browser-test.sh runs this" }, () => {});
} else if (!base) {
  console.error("EARSHOT_URL is not set: run scripts/browser-test.sh");
  process.exit(2);
} else {
  await run();
}

async function run() {
  const artifacts = resolve(repoRoot, process.env.ARTIFACTS || "web/sdk/test-artifacts");
  mkdirSync(artifacts, { recursive: true });
  // MODES (default "transcript,agent,zh") picks the parts to run.
  const modes = (process.env.MODES || "transcript,agent,zh").split(",");
  // A run whose transcript alone is off (what tiny.en hears through the browser's audio
  // path varies: "ask not my country" once in a CI run on 2026-12-07, with the same build
  // right 3 of 3 times after it) runs once more, and says so; a lost or repeated final and
  // every other check fail at once.
  if (modes.includes("transcript") && !(await transcriptRun(artifacts, true))) await transcriptRun(artifacts, false);
  if (modes.includes("zh")) await mandarinRun(artifacts);
  if (!modes.includes("agent")) return;
  // Voice agent mode, AGENT_RUNS times (default 1): each in a fresh browser, whose fake
  // microphone plays the clip from the start.
  const runs = Math.max(1, Number(process.env.AGENT_RUNS || 1));
  const figures = [];
  for (let i = 1; i <= runs; i++) {
    // What tiny.en hears in a turn's final depends on where the browser's audio chunks
    // fall: one run in two on 2026-12-07 heard "ask the country" for "ask not what your
    // country" (3 word edits). A run whose transcript alone is off runs once more, and says
    // so; order, latencies and every other check fail at once.
    const f = (await agentRun(artifacts, i, true)) || (await agentRun(artifacts, i, false));
    figures.push(f);
  }
  if (runs > 1) {
    const all = (k) => figures.flatMap((f) => f[k]);
    console.log(`voice agent, ${runs} runs: median latency StartOfTurn ${median(all("start"))} ms (${all("start").length}), ` +
      `EagerEndOfTurn ${median(all("eager"))} ms (${all("eager").length}), EndOfTurn ${median(all("end"))} ms (${all("end").length}); ` +
      `per run EndOfTurn ${figures.map((f) => f.end.join("/")).join(", ")}`);
  }
}

async function transcriptRun(artifacts, mayRetry) {
  const consoleLines = [];

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
      "--no-first-run", "--disable-component-update", "--disable-sync",
      "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
      `--use-file-for-fake-audio-capture=${jfkWav}%noloop`, "--autoplay-policy=no-user-gesture-required",
    ],
  });
  let failed = null;
  let page;
  try {
    const ctx = await browser.newContext({ permissions: ["microphone"] });
    page = await ctx.newPage();
    page.on("console", (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
    page.on("pageerror", (e) => consoleLines.push(`[pageerror] ${e.message}`));
    page.on("requestfailed", (r) => consoleLines.push(`[requestfailed] ${r.url()} ${r.failure()?.errorText}`));
    // Record what the page asks getUserMedia for and what the track got.
    await page.addInitScript(() => {
      const md = navigator.mediaDevices;
      const gum = md.getUserMedia.bind(md);
      md.getUserMedia = async (c) => {
        const s = await gum(c);
        const t = s.getAudioTracks()[0].getSettings();
        window.__gum = { asked: c.audio, got: { echoCancellation: t.echoCancellation, noiseSuppression: t.noiseSuppression, autoGainControl: t.autoGainControl } };
        return s;
      };
    });
    await page.goto(base + "/", { waitUntil: "load" });
    await page.waitForSelector("#model option[value='tiny.en']", { state: "attached", timeout: 30_000 });
    await page.selectOption("#model", "tiny.en");
    await page.waitForSelector("#mic:not([disabled])");
    // Record when partial and final text first appear.
    await page.evaluate(() => {
      const t0 = performance.now();
      const seen = (window.__seen = { partial: null, final: null, partials: [] });
      const partial = document.getElementById("partial");
      const finals = document.getElementById("finals");
      new MutationObserver(() => {
        const p = partial.textContent.trim();
        if (p) {
          if (seen.partial === null) seen.partial = performance.now() - t0;
          seen.partials.push(p);
        }
        if (finals.textContent.trim() && seen.final === null) seen.final = performance.now() - t0;
      }).observe(document.getElementById("transcript"), { childList: true, subtree: true, characterData: true });
    });
    await page.click("#mic");
    // Wait for the clip's last words in a final (the clip ends with them).
    await page.waitForFunction(
      (want) => {
        const t = document.getElementById("finals").textContent.toLowerCase().replace(/[^a-z' ]+/g, " ").replace(/'/g, "").replace(/\s+/g, " ");
        return t.includes(want);
      },
      "can do for your country",
      { timeout: 60_000, polling: 200 },
    );
    const seen = await page.evaluate(() => window.__seen);
    const finals = normalise(await page.textContent("#finals"));
    const latency = await page.textContent("#latency");
    console.log(`first partial at ${Math.round(seen.partial)} ms, first final at ${Math.round(seen.final)} ms, latency ${latency}`);
    console.log(`final text: ${finals}`);
    if (seen.partial === null) throw new Error("no partial text appeared");
    if (!(seen.partial < seen.final)) throw new Error(`partial text (${seen.partial} ms) did not appear before the final (${seen.final} ms)`);
    // The SDK asks for echo cancellation only: Chromium's noise suppression made tiny.en
    // hear "and so my fellow america ask not my country…" (3 edits) in every run of
    // `make bench-webrtc` (BENCHMARKS.md, Browser audio processing), and the page must not get it back.
    const gum = await page.evaluate(() => window.__gum);
    console.log(`getUserMedia asked ${JSON.stringify(gum?.asked)}, got ${JSON.stringify(gum?.got)}`);
    if (!gum) throw new Error("the page did not call getUserMedia");
    for (const [k, want] of [["echoCancellation", true], ["noiseSuppression", false], ["autoGainControl", false]]) {
      if (gum.got[k] !== want) throw new Error(`the microphone track has ${k}=${gum.got[k]}, want ${want}`);
    }
    // Without it the mic path (capture, AudioWorklet, 16 kHz) gave the clip word for word
    // in the benchmark; allow 2 edits for a short first final ("america") on a slow CI
    // machine, require the sentence the noise suppression broke (within one edit), and the clip's last
    // sentence exactly once: a lost or repeated final removes or doubles it.
    const dist = wordDistance(finals, CLIP);
    const misheard = (msg) => Object.assign(new Error(msg), { misheard: true });
    if (dist > 2) throw misheard(`finals differ from the clip by ${dist} words: ${finals}`);
    // One word edit allowed: tiny.en sometimes hears "as not what your country…" here; the
    // noise suppression's "ask not my country" is two.
    if (!containsNearly(finals, SENTENCE, 1)) throw misheard(`"${SENTENCE}" is not in the finals (within one word edit): ${finals}`);
    // The clip's last sentence once, within one word edit: the mic path hears "as" for
    // "ask" now and then (seen in two CI runs; BENCHMARKS.md measured 3.5 % WER on it),
    // while a lost final gives 0 and a repeated one 2.
    const tail = countNearly(finals, "ask what you can do for your country", 1);
    if (tail !== 1) throw new Error(`"ask what you can do for your country" delivered ${tail} times (within one word edit): ${finals}`);
    await page.click("#mic"); // stop
    await page.waitForSelector("#mic[aria-pressed='false']", { timeout: 30_000 });
    // A graceful stop: the last finals arrive, then the stream closes cleanly.
    await page.waitForFunction(() => /^(Done|Stopped)\./.test(document.getElementById("status").textContent), null, { timeout: 30_000 });
    const status = await page.textContent("#status");
    if (status !== "Done.") throw new Error(`after stop the page says ${JSON.stringify(status)}, want "Done."`);
    const err = await page.textContent("#error");
    if (err.trim() && !(await page.isHidden("#error"))) throw new Error("the page shows an error: " + err);
  } catch (e) {
    failed = e;
    const shown = page ? await page.textContent("#transcript").catch(() => null) : null;
    if (shown !== null) failed.message += `\nthe page shows: ${JSON.stringify(shown)}`;
  } finally {
    if (page) await page.screenshot({ path: join(artifacts, "demo.png"), fullPage: true }).catch(() => {});
    await browser.close();
  }
  if (failed && failed.misheard && mayRetry) {
    console.log(`transcript run misheard: ${failed.message}; running it once more (a misheard final, not a lost or repeated one)`);
    return false;
  }
  if (failed) {
    console.error("FAIL:", failed.message);
    console.error("---- page console ----\n" + consoleLines.join("\n"));
    process.exit(1);
  }
  console.log(`PASS; screenshot ${join(artifacts, "demo.png")}`);
  return true;
}

function median(xs) {
  return xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] : NaN;
}

function launch(wavPath) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
      "--no-first-run", "--disable-component-update", "--disable-sync",
      "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
      `--use-file-for-fake-audio-capture=${wavPath}%noloop`, "--autoplay-policy=no-user-gesture-required",
    ],
  });
}

/** The JFK clip with LEAD_S of silence before and TAIL_S after, as a 16 kHz PCM16 WAV. */
function paddedJfk(path, leadS, tailS) {
  const { rate, samples } = readWav(jfkWav);
  const pcm = new Int16Array(Math.round((leadS + tailS) * rate) + samples.length);
  pcm.set(samples, Math.round(leadS * rate));
  const b = Buffer.alloc(44 + pcm.length * 2);
  b.write("RIFF", 0, "ascii");
  b.writeUInt32LE(36 + pcm.length * 2, 4);
  b.write("WAVEfmt ", 8, "ascii");
  b.writeUInt32LE(16, 16);
  b.writeUInt16LE(1, 20);
  b.writeUInt16LE(1, 22);
  b.writeUInt32LE(rate, 24);
  b.writeUInt32LE(rate * 2, 28);
  b.writeUInt16LE(2, 32);
  b.writeUInt16LE(16, 34);
  b.write("data", 36, "ascii");
  b.writeUInt32LE(pcm.length * 2, 40);
  for (let i = 0; i < pcm.length; i++) b.writeInt16LE(pcm[i], 44 + i * 2);
  writeFileSync(path, b);
}

/** Is there a run of words in text within maxEdits word edits of phrase? */
function containsNearly(text, phrase, maxEdits) {
  return countNearly(text, phrase, maxEdits) > 0;
}

// countNearly counts the places, not overlapping, where text holds phrase within maxEdits
// word edits: a phrase heard once with one word wrong counts 1, a repeated one 2.
function countNearly(text, phrase, maxEdits) {
  const t = text.split(" "), n = phrase.split(" ").length;
  let count = 0;
  for (let i = 0; i < t.length; ) {
    let matched = 0;
    for (let len = Math.max(1, n - maxEdits); len <= n + maxEdits && i + len <= t.length; len++) {
      if (wordDistance(t.slice(i, i + len).join(" "), phrase) <= maxEdits) {
        matched = len;
        break;
      }
    }
    if (matched > 0) {
      count++;
      i += matched;
    } else {
      i++;
    }
  }
  return count;
}

// The voice agent mode: the page streams the microphone to /v2/listen and shows each
// turn as a row of events with their latencies. The clip gets 6 s of silence after it:
// its last turn ends by Smart Turn, or at eot_timeout_ms (5 s) at the latest.
async function agentRun(artifacts, n, mayRetry) {
  const wav = join(artifacts, "jfk-agent.wav");
  paddedJfk(wav, 0.5, 6);
  const consoleLines = [];
  const browser = await launch(wav);
  let failed = null;
  let page;
  let figures;
  try {
    const ctx = await browser.newContext({ permissions: ["microphone"] });
    page = await ctx.newPage();
    page.on("console", (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
    page.on("pageerror", (e) => consoleLines.push(`[pageerror] ${e.message}`));
    await page.goto(base + "/", { waitUntil: "load" });
    await page.waitForSelector("#model option[value='tiny.en']", { state: "attached", timeout: 30_000 });
    await page.selectOption("#model", "tiny.en");
    await page.waitForSelector("#mode-agent:not([disabled])");
    if (await page.isVisible("#turns")) throw new Error("the turns show before the voice agent mode is chosen");
    await page.check("#mode-agent");
    if (!(await page.isVisible("#eot")) || (await page.isVisible("#transcript"))) throw new Error("the voice agent mode did not swap the transcript for the turns");
    await page.fill("#eager", "0.5"); // EagerEndOfTurn and TurnResumed too
    await page.click("#mic");
    // Until the turn with the clip's last words has ended.
    await page.waitForFunction(
      (want) => [...document.querySelectorAll("#turns li.turn[data-state='ended'] .turn-text")].some((p) =>
        p.textContent.toLowerCase().replace(/[^a-z' ]+/g, " ").replace(/'/g, "").replace(/\s+/g, " ").includes(want)),
      "can do for your country",
      { timeout: 60_000, polling: 100 },
    );
    await page.waitForTimeout(300); // anything that would follow wrongly
    // The clip's last 0.3 s sometimes opens a turn of its own (no words) just before this
    // point: let it end (by the model, or at eot_timeout_ms in the 6 s of silence) rather
    // than read it as a stream that ended inside a turn.
    await page.waitForFunction(() => [...document.querySelectorAll("#turns li.turn")].every((li) => li.dataset.state === "ended"),
      null, { timeout: 8_000, polling: 100 }).catch(() => {});
    const rows = await page.$$eval("#turns li.turn", (lis) => lis.map((li) => ({
      index: Number(li.dataset.turn), state: li.dataset.state, text: li.querySelector(".turn-text").textContent,
      window: li.querySelector(".turn-window").textContent,
      events: [...li.querySelectorAll(".ev")].map((e) => ({
        event: e.dataset.event, count: Number(e.dataset.count), latency: e.dataset.latencyMs, trigger: e.dataset.trigger,
        shown: e.querySelector(".ev-latency").textContent,
      })),
    })));
    const flow = rows.map((r) => `${r.index} (${r.window}): ${r.events.map((e) => e.event + (e.count > 1 ? "×" + e.count : "") + (e.trigger ? `(${e.trigger})` : "") + " " + e.shown).join(", ")} | ${JSON.stringify(r.text)}`).join("\n  ");
    console.log(`voice agent run ${n}:\n  ${flow}`);
    rows.forEach((r, i) => { if (r.index !== i) throw new Error(`row ${i} is turn ${r.index}`); });
    const events = rows.flatMap((r) => r.events.map((e) => ({ event: e.event, turnIndex: r.index })));
    const order = fluxOrderError(events);
    if (order) throw new Error("turn rows not in Flux's order: " + order);
    for (const r of rows) {
      for (const e of r.events) {
        if (!/^\d+ ms$/.test(e.shown) || !(Number(e.latency) >= 0)) throw new Error(`turn ${r.index} ${e.event} shows latency ${JSON.stringify(e.shown)}`);
      }
    }
    // (The clip's last 0.3 s, after "country", sometimes makes a turn of its own without words.)
    const ended = rows.filter((r) => r.state === "ended").map((r) => normalise(r.text)).filter((t) => t !== "");
    const misheard = (msg) => Object.assign(new Error(msg), { misheard: true });
    if (!ended.some((t) => containsNearly(t, SENTENCE, 1))) throw misheard(`no EndOfTurn holds "${SENTENCE}": ${JSON.stringify(ended)}`);
    const dist = wordDistance(ended.join(" "), CLIP);
    if (dist > 3) throw misheard(`the EndOfTurns differ from the clip by ${dist} words: ${JSON.stringify(ended)}`);
    for (const id of ["#sot-latency", "#eot-latency"]) {
      const shown = await page.textContent(id);
      if (!/^\d+ ms/.test(shown)) throw new Error(`${id} shows ${JSON.stringify(shown)}`);
    }
    const lat = (name) => rows.flatMap((r) => r.events.filter((e) => e.event === name).map((e) => Number(e.latency)));
    figures = { start: lat("StartOfTurn"), eager: lat("EagerEndOfTurn"), end: lat("EndOfTurn") };
    console.log(`voice agent run ${n}: latency ms StartOfTurn ${figures.start.join(", ")}; EagerEndOfTurn ${figures.eager.join(", ") || "none"}; ` +
      `EndOfTurn ${figures.end.join(", ")}; page medians: start ${await page.textContent("#sot-latency")}, end ${await page.textContent("#eot-latency")}`);
    await page.click("#mic"); // stop
    await page.waitForFunction(() => /^(Done|Stopped)\./.test(document.getElementById("status").textContent), null, { timeout: 30_000 });
    const status = await page.textContent("#status");
    if (status !== "Done.") throw new Error(`after stop the page says ${JSON.stringify(status)}, want "Done."`);
    if (!(await page.isHidden("#error"))) throw new Error("the page shows an error: " + (await page.textContent("#error")));
  } catch (e) {
    failed = e;
  } finally {
    if (page) await page.screenshot({ path: join(artifacts, "demo-agent.png"), fullPage: true }).catch(() => {});
    await browser.close();
  }
  if (failed && failed.misheard && mayRetry) {
    console.log(`voice agent run ${n} misheard: ${failed.message}; running it once more (a misheard turn, not a lost or reordered one)`);
    return null;
  }
  if (failed) {
    console.error(`FAIL (voice agent run ${n}):`, failed.message);
    console.error("---- page console ----\n" + consoleLines.join("\n"));
    process.exit(1);
  }
  console.log(`PASS voice agent run ${n}; screenshot ${join(artifacts, "demo-agent.png")}`);
  return figures;
}


/** Is base installed? `earshot models path base` (exit 1 when it is missing). */
function baseInstalled() {
  const bin = process.env.EARSHOT_BIN || join(repoRoot, "bin", "earshot");
  const r = spawnSync(bin, ["models", "path", "base"], { encoding: "utf8" });
  return r.status === 0;
}

function zhClip() {
  const dir = join(testdataDir, "speech-zh");
  const rows = (f) => readFileSync(join(dir, f), "utf8").trim().split("\n").map((l) => l.split("\t"));
  const [head, ...manifest] = rows("manifest.tsv");
  const [phead, ...prov] = rows("provenance.tsv");
  const m = manifest.find((r) => r[head.indexOf("id")] === ZH_CLIP);
  const p = prov.find((r) => r[phead.indexOf("id")] === ZH_CLIP);
  if (!m || !p) throw new Error(`${ZH_CLIP} is not in ${dir}/manifest.tsv and provenance.tsv`);
  if (p[phead.indexOf("reference_quality")] !== "human") throw new Error(`${ZH_CLIP}'s reference is not a human transcript`);
  return { wav: join(dir, m[head.indexOf("wav")]), reference: m[head.indexOf("reference")] };
}

/** Characters (letters and digits: no punctuation or spaces) for the CER. */
function cerChars(s) {
  return Array.from(s.normalize("NFKC")).filter((c) => /[\p{L}\p{N}]/u.test(c));
}

/** Character error rate of hyp against ref (edit distance over ref's length). */
function cer(hyp, ref) {
  const x = cerChars(hyp), y = cerChars(ref);
  let prev = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const cur = [i];
    for (let j = 1; j <= y.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] === y[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[y.length] / y.length;
}

/** What is wrong with a Mandarin transcript, or "". */
function zhProblem(text, reference) {
  if (text.includes("\uFFFD")) return "it has U+FFFD (a broken UTF-8 sequence)";
  const gap = /(\p{Script=Han})\s+(\p{Script=Han})/u.exec(text);
  if (gap) return `a space between ${gap[1]} and ${gap[2]}`;
  if (!HAN.test(text)) return "no Chinese characters";
  // Traditional forms of the reference's characters: the page asked for Simplified.
  const trad = /[廣產會協]/u.exec(text);
  if (trad) return `Traditional ${trad[0]} in a Simplified transcript`;
  const e = cer(text, reference);
  if (e > ZH_MAX_CER) return `CER ${e.toFixed(2)} > ${ZH_MAX_CER}`;
  return "";
}

// Mandarin through the page: base with 中文 简体 and with Auto-detect (transcript), then
// the voice agent with 中文 简体 (language_hint), each streaming the clip from the WAV
// file input in real time.
async function mandarinRun(artifacts) {
  if (!baseInstalled()) {
    const msg = "model base is missing: the Mandarin case needs it (run `make model MODEL=base`)";
    if (process.env.CI === "true") {
      console.error("FAIL (Mandarin): " + msg);
      process.exit(1);
    }
    console.error("\n*** SKIPPING the Mandarin case: " + msg + " ***\n");
    return;
  }
  const clip = zhClip();
  if (!existsSync(clip.wav)) throw new Error(`${clip.wav} is missing`);
  const consoleLines = [];
  const browser = await launch(jfkWav);
  let failed = null;
  let page;
  const figures = [];
  try {
    const ctx = await browser.newContext();
    page = await ctx.newPage();
    page.on("console", (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
    page.on("pageerror", (e) => consoleLines.push(`[pageerror] ${e.message}`));
    await page.goto(base + "/", { waitUntil: "load" });
    await page.waitForSelector("#model option[value='base']", { state: "attached", timeout: 30_000 });
    await page.waitForSelector("#file:not([disabled])");
    // An English-only model: the Language select is disabled and shows English.
    await page.selectOption("#model", "tiny.en");
    if (!(await page.isDisabled("#language")) || (await page.inputValue("#language")) !== "en") {
      throw new Error(`with tiny.en the Language select is ${await page.isDisabled("#language") ? "disabled" : "enabled"} showing ${await page.inputValue("#language")}, want disabled, en`);
    }
    const label = await page.$eval("#language", (el) => el.labels[0]?.textContent);
    if (label !== "Language") throw new Error(`the Language select's label is ${JSON.stringify(label)}`);
    await page.selectOption("#model", "base");
    if (await page.isDisabled("#language")) throw new Error("with base the Language select is disabled");

    const stream = async (what) => {
      await page.click("#clear");
      const t0 = Date.now();
      await page.setInputFiles("#file", clip.wav);
      await page.waitForFunction(() => document.getElementById("mic").getAttribute("aria-pressed") === "true", null, { timeout: 10_000 });
      await page.waitForFunction(() => /^(Done|Stopped)\./.test(document.getElementById("status").textContent), null, { timeout: 45_000, polling: 100 });
      const status = await page.textContent("#status");
      if (!(await page.isHidden("#error"))) throw new Error(`${what}: the page shows an error: ${await page.textContent("#error")}`);
      if (!status.startsWith("Done.")) throw new Error(`${what}: after the file the page says ${JSON.stringify(status)}`);
      return { status, ms: Date.now() - t0 };
    };

    for (const [language, name] of [["zh-CN", "中文 简体"], ["multi", "Auto-detect"]]) {
      await page.selectOption("#language", language);
      const { status, ms } = await stream(name);
      const text = await page.textContent("#finals");
      const e = cer(text, clip.reference);
      figures.push(`${name}: CER ${e.toFixed(3)} ${JSON.stringify(text)} (${ms} ms)`);
      console.log(`Mandarin, base + ${name}: ${JSON.stringify(text)}, CER ${e.toFixed(3)} against ${clip.reference}; status ${JSON.stringify(status)}`);
      const bad = zhProblem(text, clip.reference);
      if (bad) throw new Error(`base + ${name}: ${bad}: ${JSON.stringify(text)} (reference ${clip.reference})`);
      if (language === "multi" && !/Detected language: .*\(zh\)/.test(status)) throw new Error(`Auto-detect: the status does not name the detected language zh: ${JSON.stringify(status)}`);
      if (language === "zh-CN" && /Detected language/.test(status)) throw new Error(`中文 简体: the status names a detected language: ${JSON.stringify(status)}`);
      const lang = await page.getAttribute("#transcript", "lang");
      if (!/^zh/.test(lang || "")) throw new Error(`${name}: the transcript is marked lang=${lang}, want zh…`);
    }

    // The voice agent: /v2/listen with language_hint=zh-CN.
    await page.selectOption("#language", "zh-CN");
    await page.check("#mode-agent");
    const { ms } = await stream("voice agent, 中文 简体");
    const turns = await page.$$eval("#turns li.turn[data-state='ended'] .turn-text", (ps) => ps.map((p) => p.textContent).filter((t) => t.trim()));
    const text = turns.join("");
    const e = cer(text, clip.reference);
    figures.push(`voice agent 中文 简体: CER ${e.toFixed(3)} ${JSON.stringify(turns)} (${ms} ms)`);
    console.log(`Mandarin, voice agent, base + 中文 简体: ${JSON.stringify(turns)}, CER ${e.toFixed(3)}`);
    const bad = zhProblem(text, clip.reference);
    if (bad) throw new Error(`voice agent, base + 中文 简体: ${bad}: ${JSON.stringify(turns)}`);
  } catch (e) {
    failed = e;
  } finally {
    if (page) await page.screenshot({ path: join(artifacts, "demo-zh.png"), fullPage: true }).catch(() => {});
    await browser.close();
  }
  if (failed) {
    console.error("FAIL (Mandarin):", failed.message);
    console.error("---- page console ----\n" + consoleLines.join("\n"));
    process.exit(1);
  }
  console.log(`PASS Mandarin (${figures.join("; ")}); screenshot ${join(artifacts, "demo-zh.png")}`);
}
