// Package smartturn tells whether a speaker has finished their turn: Pipecat's
// Smart Turn v3.2 end-of-turn model, given the last 8 s of 16 kHz audio,
// returns the probability that the turn is complete (pipecat calls it complete
// above 0.5). It runs the model with ONNX Runtime's C API through a small cgo
// layer that dlopen()s the library at run time, so building needs neither ONNX
// Runtime nor its header; Open says to run scripts/smartturn.sh when the
// library or the model is missing.
//
// Model card:
//   - Weights: smart-turn-v3.2-cpu.onnx (8 679 182 bytes, sha256
//     2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f),
//     int8-quantised, a Whisper Tiny encoder with a linear head and a sigmoid;
//     taken from the PyPI wheel pipecat-ai==1.14.0
//     (pipecat/audio/turn/smart_turn/data/). Licence: BSD-2-Clause (model card of
//     huggingface.co/pipecat-ai/smart-turn-v3 and github.com/pipecat-ai/smart-turn);
//     pipecat itself is BSD-2-Clause (Daily), its whisper feature code is derived from
//     Hugging Face transformers (Apache-2.0).
//   - Runtime: libonnxruntime.so.1.31.1 from the PyPI wheel onnxruntime==1.31.1
//     (manylinux_2_28 x86_64), MIT (Microsoft). Any ONNX Runtime from 1.16 on
//     works through $EARSHOT_ORT_LIB or Options.LibPath.
//   - Input "input_features" float32 [batch, 80, 800]; output "logits" float32
//     [batch, 1], which despite its name is already the sigmoid's probability
//     (the graph ends in Sigmoid; pipecat reads outputs[0][0] as the probability).
//
// Preprocessing (Features), as pipecat 1.14.0 does it — local_smart_turn_v3.py
// for the window, _whisper_features.py for the rest (transformers'
// WhisperFeatureExtractor with chunk_length=8, do_normalize=True):
//   - the last 8 s (128 000 samples); shorter audio is padded with zeros at the
//     start (before the speech), never at the end;
//   - zero-mean unit-variance normalisation over those 8 s in float32, with 1e-7
//     added to the variance (done here with numpy's exact float32 pairwise sums:
//     the model is quantised, and a last-bit change in its input can move its
//     output by a step);
//   - centred STFT with reflect padding of 200, n_fft 400, hop 160, periodic
//     Hann window, power spectrum; 80 Slaney-scale, Slaney-normalised mel
//     filters over 0–8000 Hz; log10 of max(mel, 1e-10); the 801st frame dropped;
//     values below (max − 8) raised to it; then (x + 4) / 4.
//
// Audio at other rates must be resampled to 16 kHz first (pipecat uses soxr;
// ingest's resampler gives the same decision on the 8 kHz test prompt).
// The reference fixtures in testdata/ come from pipecat's own code
// (scripts/smartturn-ref.py).
package smartturn
