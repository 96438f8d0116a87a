package models

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

func TestSynthesizeTiny(t *testing.T) {
	for _, dims := range []string{"tiny", "tiny.en"} {
		t.Run(dims, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "ggml-"+dims+"-synth.bin")
			var progress bytes.Buffer
			if err := Synthesize(dims, out, &progress); err != nil {
				t.Fatal(err)
			}
			info, err := ReadGGMLInfo(out)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := SynthHparams(dims)
			if info.Hparams != want || !info.Synthetic || info.TensorCount != 167 || !info.HasWeights() ||
				info.Variant != dims || info.VocabEntries != int(want.NVocab) || info.Multilingual != (dims == "tiny") {
				t.Fatalf("info %+v", info)
			}
			if !strings.Contains(progress.String(), "167/167 tensors") {
				t.Errorf("progress: %q", progress.String())
			}
		})
	}
}

func TestSynthesizeUnknownDims(t *testing.T) {
	err := Synthesize("huge", filepath.Join(t.TempDir(), "x.bin"), nil)
	if err == nil || !strings.Contains(err.Error(), "large-v3-turbo") {
		t.Fatalf("error should list the known dims: %v", err)
	}
}

func TestSynthHparamsLargeV3Turbo(t *testing.T) {
	h, err := SynthHparams("large-v3-turbo")
	if err != nil {
		t.Fatal(err)
	}
	// whisper.cpp's loader log for ggml-large-v3-turbo.bin.
	want := Hparams{NVocab: 51866, NAudioCtx: 1500, NAudioState: 1280, NAudioHead: 20, NAudioLayer: 32,
		NTextCtx: 448, NTextState: 1280, NTextHead: 20, NTextLayer: 4, NMels: 128, FType: 1}
	if h != want || variantOf(h) != "large-v3-turbo" || h.ExpectedTensors() != 7+15*32+4+24*4 {
		t.Fatalf("%+v", h)
	}
}
