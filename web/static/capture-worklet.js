// Earshot capture worklet: turns the microphone (any AudioContext rate, usually
// 48 kHz or 44.1 kHz) into 16 kHz mono PCM16 frames for /v1/listen.
//
// Mono mix, then a windowed-sinc low-pass + resampler in one step: every output
// sample is the input convolved with a Blackman-windowed sinc centred on its exact
// (fractional) input position, cutoff 7.2 kHz, transition band ~2 kHz, so content
// above ~8 kHz that would alias is attenuated by ~70 dB. The kernel is tabulated for
// PHASES fractional positions and interpolated linearly between them.
//
// Messages to the main thread: {pcm: ArrayBuffer (Int16 LE samples), rms, peak}
// every frameSamples output samples (default 640 = 40 ms). Send {type: "stop"} to end.

const PHASES = 256;

class Resampler {
  /**
   * @param {number} inRate input sample rate (Hz)
   * @param {number} outRate output sample rate (Hz)
   * @param {number} cutoff low-pass cutoff (Hz), below outRate / 2
   * @param {number} transition transition band width (Hz)
   */
  constructor(inRate, outRate = 16000, cutoff = 7200, transition = 2000) {
    this.step = inRate / outRate;
    // Blackman: transition width ≈ 5.5 fs / taps.
    const half = Math.max(4, Math.ceil((5.5 * inRate) / transition / 2));
    this.half = half;
    const taps = 2 * half;
    this.taps = taps;
    const fc = Math.min(cutoff, (outRate / 2) * 0.95) / inRate; // cycles per input sample
    // table[p * taps + j]: weight of input sample k = i0 - half + 1 + j for an output at
    // position i0 + p / PHASES; one extra phase row so interpolation at p+1 is safe.
    this.table = new Float32Array((PHASES + 1) * taps);
    for (let p = 0; p <= PHASES; p++) {
      const frac = p / PHASES;
      let sum = 0;
      for (let j = 0; j < taps; j++) {
        const tau = frac + half - 1 - j; // output position minus input position
        const x = 2 * fc * tau;
        const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
        const w = (tau + half) / taps; // 0..1 across the window
        const win = w <= 0 || w >= 1 ? 0 : 0.42 - 0.5 * Math.cos(2 * Math.PI * w) + 0.08 * Math.cos(4 * Math.PI * w);
        const v = 2 * fc * sinc * win;
        this.table[p * taps + j] = v;
        sum += v;
      }
      for (let j = 0; j < taps; j++) this.table[p * taps + j] /= sum; // unity gain at DC
    }
    this.buf = new Float32Array(Math.max(4096, taps * 4));
    this.len = half; // leading zeros: history for the first outputs
    this.pos = half - 1; // input position of the next output sample
  }

  /**
   * Push mono input samples; returns resampled output (a new Float32Array).
   * @param {Float32Array} input
   */
  push(input) {
    if (this.len + input.length > this.buf.length) {
      const nb = new Float32Array(Math.max(this.buf.length * 2, this.len + input.length));
      nb.set(this.buf.subarray(0, this.len));
      this.buf = nb;
    }
    this.buf.set(input, this.len);
    this.len += input.length;
    const out = [];
    const { buf, table, taps, half, step } = this;
    while (Math.floor(this.pos) + half < this.len) {
      const i0 = Math.floor(this.pos);
      const f = (this.pos - i0) * PHASES;
      const p = Math.floor(f);
      const a = f - p;
      const r0 = p * taps;
      const r1 = r0 + taps;
      const k0 = i0 - half + 1;
      let acc0 = 0;
      let acc1 = 0;
      for (let j = 0; j < taps; j++) {
        const x = buf[k0 + j];
        acc0 += x * table[r0 + j];
        acc1 += x * table[r1 + j];
      }
      out.push(acc0 + (acc1 - acc0) * a);
      this.pos += step;
    }
    // Drop input no future output needs.
    const keep = Math.floor(this.pos) - half + 1;
    if (keep > 0) {
      buf.copyWithin(0, keep, this.len);
      this.len -= keep;
      this.pos -= keep;
    }
    return Float32Array.from(out);
  }
}

// Exposed for tests, which load this file in Node with stand-ins for the worklet globals.
globalThis.EarshotResampler = Resampler;

class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = (options && options.processorOptions) || {};
    const inRate = o.inputRate || sampleRate; // sampleRate: the AudioWorkletGlobalScope's
    this.rs = new Resampler(inRate, o.targetRate || 16000);
    this.frame = new Int16Array(o.frameSamples || 640);
    this.n = 0;
    this.sumSq = 0;
    this.peak = 0;
    this.count = 0;
    this.stopped = false;
    this.port.onmessage = (ev) => {
      if (ev.data && ev.data.type === "stop") this.stopped = true;
    };
  }

  process(inputs) {
    if (this.stopped) return false;
    const input = inputs[0];
    if (!input || input.length === 0 || !input[0]) return true; // no input connected yet
    const len = input[0].length;
    const mono = new Float32Array(len);
    for (let c = 0; c < input.length; c++) {
      const ch = input[c];
      for (let i = 0; i < len; i++) mono[i] += ch[i];
    }
    if (input.length > 1) for (let i = 0; i < len; i++) mono[i] /= input.length;
    for (let i = 0; i < len; i++) {
      const v = mono[i];
      this.sumSq += v * v;
      const a = v < 0 ? -v : v;
      if (a > this.peak) this.peak = a;
    }
    this.count += len;
    const out = this.rs.push(mono);
    for (let i = 0; i < out.length; i++) {
      let v = out[i];
      v = v > 1 ? 1 : v < -1 ? -1 : v;
      this.frame[this.n++] = v < 0 ? Math.round(v * 32768) : Math.round(v * 32767);
      if (this.n === this.frame.length) this.flush();
    }
    return true;
  }

  flush() {
    const pcm = this.frame.buffer.slice(0);
    const rms = Math.sqrt(this.sumSq / Math.max(1, this.count));
    this.port.postMessage({ pcm, rms, peak: this.peak }, [pcm]);
    this.n = 0;
    this.sumSq = 0;
    this.peak = 0;
    this.count = 0;
  }
}

registerProcessor("earshot-capture", CaptureProcessor);
