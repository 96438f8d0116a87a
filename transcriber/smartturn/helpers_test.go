package smartturn_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/earshot-dev/earshot/ingest"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/transcriber/smartturn"
	"golang.org/x/sys/cpu"
)

// refCase is one clip of testdata/reference.json, written by
// scripts/smartturn-ref.py with pipecat's own code.
type refCase struct {
	ID         string            `json:"id"`
	WAV        string            `json:"wav"`
	EndS       float64           `json:"end_s"`
	SilenceS   float64           `json:"silence_s"`
	Rate       int               `json:"rate"`
	Samples    int               `json:"samples"`
	ByCPU      map[string]cpuRef `json:"by_cpu"`
	Mean       float64           `json:"mean"`
	Std        float64           `json:"std"`
	Min        float64           `json:"min"`
	Max        float64           `json:"max"`
	MelMeans   []float64         `json:"mel_means"`
	FrameMeans []float64         `json:"frame_means"`
	Stride     int               `json:"stride"`
	Strided    []float64         `json:"strided"`
}

// cpuRef is what pipecat's code gave for a case on one class of CPU. The model is
// quantized (QDQ): ONNX Runtime runs it with different integer and float kernels on
// AVX2 and AVX-512 machines, and the activations' rounding to 8 bits turns those small
// differences into visible ones (jfk_last8s: 0.855 with AVX-512, 0.588 with AVX2 only).
type cpuRef struct {
	Probability float64 `json:"probability"`
	Complete    bool    `json:"complete"`
}

// cpuClass names the kernels ONNX Runtime's MLAS picks on this CPU, as
// scripts/smartturn-ref.py names them from /proc/cpuinfo.
func cpuClass() string {
	switch {
	case cpu.X86.HasAVX512F && cpu.X86.HasAVX512VNNI:
		return "avx512vnni"
	case cpu.X86.HasAVX512F:
		return "avx512"
	case cpu.X86.HasAVXVNNI:
		return "avxvnni"
	case cpu.X86.HasAVX2:
		return "avx2"
	}
	return "other"
}

// want returns the reference for this CPU's class. An AVX-512 CPU is compared with
// the avx512 reference when there is none for its VNNI class (the reference machine
// did not record whether it had VNNI).
func (c refCase) want() (cpuRef, string, bool) {
	class := cpuClass()
	if r, ok := c.ByCPU[class]; ok {
		return r, class, true
	}
	if class == "avx512vnni" {
		if r, ok := c.ByCPU["avx512"]; ok {
			return r, "avx512", true
		}
	}
	return cpuRef{}, class, false
}

func loadReference(tb testing.TB) []refCase {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "reference.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var doc struct {
		Cases []refCase `json:"cases"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		tb.Fatalf("testdata/reference.json: %v", err)
	}
	if len(doc.Cases) == 0 {
		tb.Fatal("testdata/reference.json has no cases")
	}
	return doc.Cases
}

// audio rebuilds a case's 16 kHz input from the shared recordings: the clip,
// cut and followed by silence as the case says. 8 kHz clips are brought to
// 16 kHz by Earshot's own resampler (ingest), not by the reference's soxr.
func (c refCase) audio(tb testing.TB) []float32 {
	tb.Helper()
	p := filepath.Join(testdata.Require(tb), filepath.FromSlash(c.WAV))
	f, err := os.Open(p)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	format, ch, err := ingest.ReadWAV(f)
	if err != nil {
		tb.Fatalf("%s: %v", p, err)
	}
	if format.SampleRate != c.Rate {
		tb.Fatalf("%s: %d Hz, the reference says %d", p, format.SampleRate, c.Rate)
	}
	mono := ingest.Downmix(ch)
	if c.EndS > 0 {
		mono = mono[:int(math.Round(c.EndS*float64(c.Rate)))]
	}
	mono = append(mono, make([]float32, int(math.Round(c.SilenceS*float64(c.Rate))))...)
	if len(mono) != c.Samples {
		tb.Fatalf("%s: %d samples, the reference had %d", c.ID, len(mono), c.Samples)
	}
	if c.Rate != 16000 {
		r := ingest.NewResampler(c.Rate, 16000)
		mono = append(r.Process(mono), r.Flush()...)
	}
	return mono
}

// openModel opens the installed model and ONNX Runtime. When either is
// missing the test is skipped with what to run, except under CI=true, where
// it fails: CI runs `make model`, which installs them (as testdata.Model).
func openModel(tb testing.TB) *smartturn.Model {
	tb.Helper()
	m, err := smartturn.Open("", smartturn.Options{})
	if err != nil {
		if _, serr := os.Stat(smartturn.DefaultModelPath()); serr == nil || os.Getenv("CI") == "true" {
			tb.Fatalf("Smart Turn model required: %v", err)
		}
		tb.Skipf("SKIPPING: Smart Turn model missing: %v", err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}

// anyRef returns one class's reference (the first by name), for the decision only.
func (c refCase) anyRef(tb testing.TB) (cpuRef, string) {
	tb.Helper()
	classes := make([]string, 0, len(c.ByCPU))
	for k := range c.ByCPU {
		classes = append(classes, k)
	}
	if len(classes) == 0 {
		tb.Fatalf("%s: the reference has no by_cpu figures", c.ID)
	}
	sort.Strings(classes)
	return c.ByCPU[classes[0]], classes[0]
}
