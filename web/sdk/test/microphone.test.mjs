// Unit tests of microphone() in Node with stand-ins for getUserMedia and Web Audio:
// which audio processing it asks the browser for (the defaults chosen by
// `make bench-webrtc`, BENCHMARKS.md, Browser audio processing, and the caller's overrides), and that
// the worklet's frames reach the connection. The real capture path runs in
// Chromium in test/browser/demo.e2e.mjs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_AUDIO_CONSTRAINTS, microphone } from "../dist/index.js";

const asked = []; // getUserMedia arguments
let refuse = null; // a DOMException-like error for the next getUserMedia
const stopped = [];

class FakeContext {
  constructor() { this.state = "running"; this.sampleRate = 48000; this.destination = {}; this.closed = false; }
  audioWorklet = { addModule: async () => {} };
  createMediaStreamSource() { return { connect() {}, disconnect() {} }; }
  createGain() { return { gain: { value: 1 }, connect() {}, disconnect() {} }; }
  async resume() {}
  async close() { this.closed = true; }
}
let lastNode;
class FakeWorkletNode {
  constructor(ctx, name, opts) {
    this.name = name;
    this.opts = opts;
    this.port = { onmessage: null, postMessage() {} };
    lastNode = this;
  }
  connect() {}
  disconnect() {}
}
globalThis.AudioContext = FakeContext;
globalThis.AudioWorkletNode = FakeWorkletNode;
Object.defineProperty(globalThis, "navigator", {
  configurable: true,
  value: {
    mediaDevices: {
      async getUserMedia(c) {
        asked.push(c);
        if (refuse) {
          const e = refuse;
          refuse = null;
          throw e;
        }
        const track = { stop: () => stopped.push(track), getSettings: () => ({ ...c.audio }) };
        return { getTracks: () => [track], getAudioTracks: () => [track] };
      },
    },
  },
});

test("microphone asks for echo cancellation, no noise suppression, no gain control by default", async () => {
  const sent = [];
  const mic = await microphone({ workletURL: "/capture-worklet.js", connection: { sendAudio: (p) => sent.push(p) } });
  assert.deepEqual(asked.at(-1), {
    audio: { channelCount: 1, echoCancellation: true, noiseSuppression: false, autoGainControl: false },
  });
  assert.deepEqual({ ...DEFAULT_AUDIO_CONSTRAINTS }, asked.at(-1).audio);
  assert.ok(Object.isFrozen(DEFAULT_AUDIO_CONSTRAINTS), "the exported defaults cannot be changed by accident");
  // A 40 ms frame from the worklet reaches the connection.
  assert.equal(lastNode.opts.processorOptions.frameSamples, 640);
  lastNode.port.onmessage({ data: { pcm: new Int16Array(640).fill(7).buffer, rms: 0.1, peak: 0.2 } });
  assert.equal(sent.length, 1);
  assert.equal(sent[0].length, 640);
  assert.equal(sent[0][0], 7);
  await mic.stop();
  assert.equal(mic.context.closed, true, "its own AudioContext is closed on stop");
  assert.equal(stopped.length, 1, "the track is stopped");
});

test("microphone constraints override the defaults one by one", async () => {
  const mic = await microphone({
    workletURL: "/capture-worklet.js", onAudio() {},
    constraints: { noiseSuppression: true, echoCancellation: false, deviceId: { exact: "usb-mic" } },
  });
  assert.deepEqual(asked.at(-1).audio, {
    channelCount: 1, echoCancellation: false, noiseSuppression: true, autoGainControl: false, deviceId: { exact: "usb-mic" },
  });
  await mic.stop();
});

test("microphone maps a refused permission to MIC_DENIED", async () => {
  refuse = Object.assign(new Error("Permission denied"), { name: "NotAllowedError" });
  await assert.rejects(microphone({ workletURL: "/capture-worklet.js" }), (e) => e.code === "MIC_DENIED");
});
