// Browser end-to-end test of the demo page: headless Chromium with a fake
// microphone that plays the JFK clip, against a running `earshot serve --demo`
// (EARSHOT_URL, started by scripts/browser-test.sh). Asserts partial text shows
// before the final, and the finals hold the clip (within 4 word edits); saves a screenshot.
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";
import { CLIP, jfkWav, normalise, repoRoot, wordDistance } from "../helpers/server.mjs";

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
    // The mic path (48 kHz capture, AudioWorklet, 16 kHz) changes what tiny.en hears at
    // the spots live.test.mjs describes: "what your" after the pause at 5.4 s came back as
    // "my" or "like your" (CI dry run of 2026-11-29), and a short first final as "america".
    // So allow 4 word edits against the clip, as live.test.mjs does, and require the
    // clip's last sentence exactly once: a lost or repeated final removes or doubles it.
    const dist = wordDistance(finals, CLIP);
    if (dist > 4) throw new Error(`finals differ from the clip by ${dist} words: ${finals}`);
    const tail = finals.match(/\bask what you can do for your country\b/g)?.length ?? 0;
    if (tail !== 1) throw new Error(`"ask what you can do for your country" delivered ${tail} times: ${finals}`);
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
  if (failed) {
    console.error("FAIL:", failed.message);
    console.error("---- page console ----\n" + consoleLines.join("\n"));
    process.exit(1);
  }
  console.log(`PASS; screenshot ${join(artifacts, "demo.png")}`);
}
