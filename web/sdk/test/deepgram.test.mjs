// The official Deepgram JavaScript SDK (@deepgram/sdk, unmodified) against a REAL
// `earshot serve --demo` (real Redis, real tiny.en): a pre-recorded request with
// utterances, paragraphs and key terms comes back in the shapes the SDK parses, with
// word times from the model and a confidence per word.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { DeepgramClient } from "@deepgram/sdk";
import { CLIP, jfkWav, normalise, startEarshot, wordDistance } from "./helpers/server.mjs";

let srv;
before(async () => { srv = await startEarshot(); });
after(async () => { await srv?.stop(); });

test("Deepgram JS SDK: pre-recorded words, utterances, paragraphs and keyterm", { timeout: 180_000 }, async () => {
  const client = new DeepgramClient({ apiKey: srv.apiKey(), baseUrl: srv.base });
  const res = await client.listen.v1.media.transcribeFile(readFileSync(jfkWav), {
    model: "tiny.en", utterances: true, paragraphs: true, utt_split: 0.8, keyterm: ["Americans"],
  });
  const alt = res.results.channels[0].alternatives[0];
  assert.ok(wordDistance(normalise(alt.transcript), CLIP) <= 2, `transcript: ${alt.transcript}`);

  // Words: times from the model, never going back; a confidence per word.
  const words = alt.words;
  assert.ok(words.length >= 20, `words: ${JSON.stringify(words)}`);
  let last = 0;
  const confs = new Set();
  for (const w of words) {
    assert.ok(w.start >= last - 1e-6 && w.end >= w.start && w.end <= 11.1, `word ${JSON.stringify(w)} after ${last}`);
    assert.ok(w.confidence > 0 && w.confidence <= 1, `confidence of ${JSON.stringify(w)}`);
    last = w.end;
    confs.add(w.confidence);
  }
  assert.ok(confs.size >= words.length / 2, `${confs.size} distinct confidences over ${words.length} words`);
  const americans = words.find((w) => w.word === "americans");
  assert.ok(americans && americans.end > 1.9 && americans.end < 2.6, `"americans" ends at ${americans?.end} s (speech ends about 2.23 s)`);

  // Utterances: JFK's pauses (about 1 s) split the sentence; together they hold every word.
  const utts = res.results.utterances;
  assert.ok(Array.isArray(utts) && utts.length >= 2, `utterances: ${JSON.stringify(utts)}`);
  assert.equal(utts.reduce((n, u) => n + u.words.length, 0), words.length);
  for (const u of utts) {
    assert.ok(u.id && u.transcript && u.end >= u.start && u.channel === 0 && u.confidence > 0, JSON.stringify(u));
  }

  // Paragraphs: sentences with times, Deepgram's newline layout.
  const p = alt.paragraphs;
  assert.ok(p && p.transcript.startsWith("\n") && p.paragraphs.length >= 1, JSON.stringify(p));
  const sentences = p.paragraphs.flatMap((x) => x.sentences);
  assert.ok(sentences.length >= 2 && sentences.every((s) => s.text && s.end >= s.start), JSON.stringify(sentences));
  assert.equal(p.paragraphs.reduce((n, x) => n + x.num_words, 0), words.length);
});

test("Deepgram JS SDK: a refused key-term list is a clear 400", { timeout: 60_000 }, async () => {
  const client = new DeepgramClient({ apiKey: srv.apiKey(), baseUrl: srv.base });
  await assert.rejects(
    client.listen.v1.media.transcribeFile(readFileSync(jfkWav), { model: "tiny.en", keywords: ["spam:-3"] }),
    (e) => e.statusCode === 400 && /keywords/.test(JSON.stringify(e.body ?? e.message)),
  );
});
