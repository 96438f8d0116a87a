package smartturn_test

import (
	"testing"

	"github.com/earshot-dev/earshot/transcriber/smartturn"
)

// benchAudio is 8 s of real speech: the last 8 s of JFK's clip.
func benchAudio(b *testing.B) []float32 {
	for _, c := range loadReference(b) {
		if c.ID == "jfk_last8s" {
			return c.audio(b)
		}
	}
	b.Fatal("no jfk_last8s case in testdata/reference.json")
	return nil
}

// BenchmarkPredict is one end-of-turn decision on 8 s of audio: features and
// the model on one intra-op thread.
func BenchmarkPredict(b *testing.B) { benchPredict(b, benchAudio(b)) }

// BenchmarkFeatures is the log-mel step alone.
func BenchmarkFeatures(b *testing.B) { benchFeatures(b, benchAudio(b)) }

// BenchmarkPredictTurn3s and BenchmarkFeaturesTurn3s are the same on a 3 s turn (the
// last 3 s of the clip), what the turn engine gives the model for a short turn: the
// window's first 5 s are silence.
func BenchmarkPredictTurn3s(b *testing.B) { benchPredict(b, last3s(b)) }

func BenchmarkFeaturesTurn3s(b *testing.B) { benchFeatures(b, last3s(b)) }

func last3s(b *testing.B) []float32 {
	pcm := benchAudio(b)
	return pcm[len(pcm)-3*16000:]
}

func benchPredict(b *testing.B, pcm []float32) {
	m := openModel(b)
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.Predict(pcm); err != nil {
			b.Fatal(err)
		}
	}
}

func benchFeatures(b *testing.B, pcm []float32) {
	b.ResetTimer()
	for b.Loop() {
		smartturn.Features(pcm)
	}
}
