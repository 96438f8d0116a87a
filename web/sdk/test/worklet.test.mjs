// Unit test of the capture worklet's low-pass + resampler, loaded in Node with
// stand-ins for the AudioWorkletGlobalScope globals (the DSP is what is tested;
// the browser end-to-end test covers the worklet in a real AudioContext).
import { test } from "node:test";
import assert from "node:assert/strict";

const registered = {};
globalThis.sampleRate = 48000;
globalThis.AudioWorkletProcessor = class {
  constructor() {
    this.port = { posted: [], postMessage(m) { this.posted.push(m); }, onmessage: null };
  }
};
globalThis.registerProcessor = (name, cls) => { registered[name] = cls; };
await import("../../static/capture-worklet.js");

function sine(rate, freq, seconds, amp = 0.5) {
  const n = Math.round(rate * seconds);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = amp * Math.sin((2 * Math.PI * freq * i) / rate);
  return x;
}

// Amplitude of freq in x (16 kHz) by correlation, skipping the edges.
function amplitude(x, freq, rate = 16000) {
  let s = 0, c = 0;
  const from = 800, to = x.length - 800;
  for (let i = from; i < to; i++) {
    s += x[i] * Math.sin((2 * Math.PI * freq * i) / rate);
    c += x[i] * Math.cos((2 * Math.PI * freq * i) / rate);
  }
  return (2 * Math.hypot(s, c)) / (to - from);
}

function resample(rate, input) {
  const rs = new globalThis.EarshotResampler(rate, 16000);
  const parts = [];
  for (let i = 0; i < input.length; i += 128) parts.push(rs.push(input.subarray(i, i + 128)));
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

for (const rate of [48000, 44100, 22050, 96000]) {
  test(`resampler ${rate} Hz → 16 kHz keeps speech band, removes what would alias`, () => {
    const pass = resample(rate, sine(rate, 1000, 1));
    assert.ok(Math.abs(pass.length - 16000) <= 64, `1 s of input gave ${pass.length} samples`);
    const a = amplitude(pass, 1000);
    assert.ok(Math.abs(a - 0.5) < 0.01, `1 kHz amplitude ${a}, want 0.5`);
    const near = amplitude(resample(rate, sine(rate, 6000, 1)), 6000);
    assert.ok(near > 0.45, `6 kHz amplitude ${near}, want ≈0.5`);
    if (rate / 2 > 11000) {
      // 11 kHz would fold to 5 kHz; it must be gone.
      const alias = resample(rate, sine(rate, 11000, 1));
      const folded = amplitude(alias, 5000);
      assert.ok(folded < 0.5 * 10 ** (-50 / 20), `11 kHz leaks ${folded} at 5 kHz (want < -50 dB)`);
    }
  });
}

test("processor posts 40 ms PCM16 frames and a level", () => {
  const P = registered["earshot-capture"];
  assert.ok(P, "earshot-capture registered");
  const p = new P({ processorOptions: { inputRate: 48000, targetRate: 16000, frameSamples: 640 } });
  const x = sine(48000, 440, 0.5, 0.25);
  for (let i = 0; i + 128 <= x.length; i += 128) {
    assert.equal(p.process([[x.subarray(i, i + 128), x.subarray(i, i + 128)]]), true);
  }
  const frames = p.port.posted;
  assert.ok(frames.length >= 11 && frames.length <= 13, `${frames.length} frames for 0.5 s`);
  for (const f of frames) assert.equal(new Int16Array(f.pcm).length, 640);
  const last = frames[frames.length - 1];
  assert.ok(Math.abs(last.rms - 0.25 / Math.SQRT2) < 0.01, `rms ${last.rms}`);
  assert.ok(Math.abs(last.peak - 0.25) < 0.01, `peak ${last.peak}`);
  const pcm = new Int16Array(last.pcm);
  const max = pcm.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  assert.ok(Math.abs(max - 0.25 * 32767) < 400, `pcm peak ${max}`);
  p.port.onmessage({ data: { type: "stop" } });
  assert.equal(p.process([[x.subarray(0, 128)]]), false);
});
