package models

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ct2Config is what decoding takes from a CTranslate2 Whisper export's config.json
// (ctranslate2/specs/whisper_spec.py, WhisperConfig): the tokens suppressed at every
// step and at the first, the language tokens and the cross-attention heads for word
// times. A field that is absent (or null) is nil.
type ct2Config struct {
	SuppressIDs      []int    `json:"suppress_ids"`
	SuppressIDsBegin []int    `json:"suppress_ids_begin"`
	LangIDs          []int    `json:"lang_ids"`
	AlignmentHeads   [][2]int `json:"alignment_heads"`
}

// readCT2Config reads dir/config.json.
func readCT2Config(dir string) (ct2Config, error) {
	p := filepath.Join(dir, "config.json")
	var c ct2Config
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return c, fmt.Errorf("%w: %s: config.json missing (%v)", ErrNotWhisper, dir, err)
	} else if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%w: %s: %v", ErrBadModelFile, p, err)
	}
	return c, nil
}

// tokenLayout is whisper.cpp's fixed layout of the special tokens for a vocabulary of
// nVocab tokens (whisper_vocab in whisper.cpp and its loader): the ids are not read
// from the file, so an export whose tokens sit elsewhere cannot be imported.
type tokenLayout struct {
	eot, sot, langs                  int // langs: language tokens sot+1 … sot+langs
	translate, transcribe, solm      int
	prev, nosp, noTimestamps, tsBase int
}

// name names a special token for messages.
func (l tokenLayout) name(id int) string {
	switch {
	case id < 0:
		return "(not a token)"
	case id < l.eot:
		return "(text)"
	case id > l.sot && id <= l.sot+l.langs:
		return "(a language)"
	case id >= l.tsBase:
		return "(a timestamp)"
	}
	return map[int]string{l.eot: "<|endoftext|>", l.sot: "<|startoftranscript|>", l.translate: "<|translate|>",
		l.transcribe: "<|transcribe|>", l.solm: "<|startoflm|>", l.prev: "<|startofprev|>",
		l.nosp: "<|nospeech|>", l.noTimestamps: "<|notimestamps|>"}[id]
}

func layoutOf(nVocab int) tokenLayout {
	l := tokenLayout{eot: 50256, sot: 50257, langs: nVocab - 51765, translate: 50357, transcribe: 50358,
		solm: 50359, prev: 50360, nosp: 50361, noTimestamps: 50362, tsBase: 50363}
	if nVocab >= 51865 { // multilingual: one more text token, maybe more languages
		l.langs--
		dt := l.langs - 98
		l.eot, l.sot = l.eot+1, l.sot+1
		l.translate, l.transcribe, l.solm = l.translate+dt, l.transcribe+dt, l.solm+dt
		l.prev, l.nosp, l.noTimestamps, l.tsBase = l.prev+dt, l.nosp+dt, l.noTimestamps+dt, l.tsBase+dt
	}
	return l
}

// whisper.cpp's non_speech_tokens (whisper.cpp, whisper_process_logits with
// suppress_nst, which transcriber/whisper.go turns on): each, and each after a space,
// is suppressed where it is one token of the vocabulary, and so are " -" and " '".
var nonSpeechTokens = []string{
	"\"", "#", "(", ")", "*", "+", "/", ":", ";", "<", "=", ">", "@", "[", "\\", "]", "^",
	"_", "`", "{", "|", "}", "~", "「", "」", "『", "』", "<<", ">>", "<<<", ">>>", "--",
	"---", "-(", "-[", "('", "(\"", "((", "))", "(((", ")))", "[[", "]]", "{{", "}}", "♪♪",
	"♪♪♪", "♩", "♪", "♫", "♬", "♭", "♮", "♯",
}

// musicSymbols are OpenAI's "miscellaneous" non-speech symbols: openai/whisper's
// tokenizer suppresses the first token of each even where the symbol takes several
// (the first bytes of its UTF-8), which whisper.cpp, matching whole tokens, does not.
const musicSymbols = "♩♪♫♬♭♮♯"

// whisperCppSuppressed is the set of tokens whisper.cpp never samples when Earshot
// decodes with the model (suppress_nst on, tinydiarize off): the start, task, previous,
// no-speech and no-timestamps tokens, the tokens of its 100 language codes, and the
// non-speech tokens found in vocab (the ggml vocabulary block, looked up like
// whisper.cpp's token_to_id: the last id of a string wins).
func whisperCppSuppressed(l tokenLayout, vocab [][]byte) map[int]bool {
	s := map[int]bool{l.sot: true, l.translate: true, l.transcribe: true, l.solm: true,
		l.prev: true, l.nosp: true, l.noTimestamps: true}
	for i := 1; i <= 100; i++ {
		s[l.sot+i] = true
	}
	ids := make(map[string]int, len(vocab))
	for id, b := range vocab {
		ids[string(b)] = id
	}
	add := func(tok string) {
		if id, ok := ids[tok]; ok {
			s[id] = true
		}
	}
	for _, t := range nonSpeechTokens {
		add(t)
		add(" " + t)
	}
	add(" -")
	add(" '")
	return s
}

// musicPrefix reports whether tok is the leading bytes (not all) of a music symbol,
// alone or after a space: what openai/whisper suppresses and whisper.cpp does not.
func musicPrefix(tok []byte) bool {
	for _, r := range musicSymbols {
		for _, s := range []string{string(r), " " + string(r)} {
			if len(tok) < len(s) && len(tok) > len(s)-len(string(r)) && strings.HasPrefix(s, string(tok)) {
				return true
			}
		}
	}
	return false
}

// checkCT2Config compares the decoding rules an export states in config.json with
// the ones whisper.cpp applies to the imported file, which come from its fixed
// token layout and its own lists, not from the file. A difference that would change
// what the model transcribes is an error naming the field; one that cannot (the
// language tokens of an English-only model) or that whisper.cpp cannot express (the
// leading bytes of music symbols) comes back as a warning, as do the alignment heads,
// which only place word times. vocab is the ggml vocabulary block.
func checkCT2Config(c ct2Config, h Hparams, vocab [][]byte) ([]string, error) {
	l := layoutOf(int(h.NVocab))
	var warn []string
	tok := func(id int) string {
		if id >= 0 && id < l.eot {
			return fmt.Sprintf("%d %q", id, vocab[id])
		}
		return fmt.Sprintf("%d %s", id, l.name(id))
	}
	mismatch := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: config.json %s: %s; whisper.cpp applies its own rules to the imported file, so it would not decode as this export says",
			ErrUnsupported, field, fmt.Sprintf(format, args...))
	}

	if c.SuppressIDsBegin == nil {
		warn = append(warn, "config.json has no suppress_ids_begin: not checked")
	} else {
		space := slices.IndexFunc(vocab, func(b []byte) bool { return string(b) == " " })
		want := []int{space, l.eot}
		got := slices.Clone(c.SuppressIDsBegin)
		slices.Sort(got)
		if !slices.Equal(slices.Compact(got), want) {
			return nil, mismatch("suppress_ids_begin", "is %v, whisper.cpp suppresses %v (\" \" and <|endoftext|>) at the first step", c.SuppressIDsBegin, want)
		}
	}

	if c.LangIDs == nil {
		warn = append(warn, "config.json has no lang_ids: not checked")
	} else {
		want := make([]int, l.langs)
		for i := range want {
			want[i] = l.sot + 1 + i
		}
		got := slices.Clone(c.LangIDs)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			msg := fmt.Sprintf("lang_ids are %d ids %s, whisper.cpp's language tokens for %d tokens are the %d ids %d–%d",
				len(got), idRange(got), h.NVocab, len(want), want[0], want[len(want)-1])
			if h.Multilingual() {
				return nil, mismatch("lang_ids", "%s", msg)
			}
			// whisper.cpp puts no language token in an English-only model's prompt.
			warn = append(warn, "config.json "+msg+" (ignored: whisper.cpp gives an English-only model no language token)")
		}
	}

	if c.SuppressIDs == nil {
		warn = append(warn, "config.json has no suppress_ids: not checked")
	} else {
		cpp := whisperCppSuppressed(l, vocab)
		var notCpp, music, onlyCpp []string
		listed := make(map[int]bool, len(c.SuppressIDs))
		for _, id := range c.SuppressIDs {
			listed[id] = true
			switch {
			case cpp[id]:
			case id >= 0 && id < l.eot && musicPrefix(vocab[id]):
				music = append(music, tok(id))
			default:
				notCpp = append(notCpp, tok(id))
			}
		}
		// Text tokens only: the special tokens whisper.cpp suppresses beyond the list
		// (no-timestamps, the languages) are its rule for every model.
		for id := range l.eot {
			if cpp[id] && !listed[id] {
				onlyCpp = append(onlyCpp, tok(id))
			}
		}
		slices.Sort(onlyCpp)
		switch {
		case len(notCpp) > 0:
			return nil, mismatch("suppress_ids", "lists %d ids whisper.cpp does not suppress: %s", len(notCpp), strings.Join(notCpp, ", "))
		case len(onlyCpp) > 0:
			return nil, mismatch("suppress_ids", "leaves out %d tokens whisper.cpp suppresses: %s", len(onlyCpp), strings.Join(onlyCpp, ", "))
		}
		if len(music) > 0 {
			warn = append(warn, fmt.Sprintf("config.json suppress_ids lists %s, the leading bytes of music symbols (♪ …), which openai/whisper suppresses and whisper.cpp, matching whole tokens, does not", strings.Join(music, ", ")))
		}
	}

	preset := DTWPreset(h)
	switch heads, known := dtwHeads[preset]; {
	case c.AlignmentHeads == nil:
	case !known:
		warn = append(warn, fmt.Sprintf("config.json alignment_heads %v: whisper.cpp has no preset for these dimensions, so the model gets no DTW word times", c.AlignmentHeads))
	case !sameHeads(c.AlignmentHeads, heads):
		warn = append(warn, fmt.Sprintf("config.json alignment_heads are %v, but DTW word times will use whisper.cpp's %s preset %v (chosen from the dimensions): word times may be off", c.AlignmentHeads, preset, heads))
	}
	return warn, nil
}

// idRange writes sorted ids as "a–b" when they are consecutive, else as a list.
func idRange(ids []int) string {
	if len(ids) == 0 {
		return "[]"
	}
	if ids[len(ids)-1]-ids[0] == len(ids)-1 {
		return fmt.Sprintf("%d–%d", ids[0], ids[len(ids)-1])
	}
	return fmt.Sprint(ids)
}

func sameHeads(a, b [][2]int) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	byHead := func(x, y [2]int) int { return cmp.Or(x[0]-y[0], x[1]-y[1]) }
	slices.SortFunc(a, byHead)
	slices.SortFunc(b, byHead)
	return slices.Equal(a, b)
}

// DTWPreset names the alignment heads of OpenAI's checkpoint with these
// hyper-parameters ("" if none is known): the size from the encoder's layers and width,
// ".en" for the English-only vocabulary (51864 tokens), large-v3 from its 128 mel bins
// and turbo from its 4 decoder layers. A fine-tune keeps its base's heads; quantized
// files keep them too. transcriber/whispercpp asks whisper.cpp for the heads it names.
func DTWPreset(h Hparams) string {
	size := map[[2]int32]string{{4, 384}: "tiny", {6, 512}: "base", {12, 768}: "small", {24, 1024}: "medium"}[[2]int32{h.NAudioLayer, h.NAudioState}]
	switch {
	case size != "" && h.NVocab == 51864:
		return size + ".en"
	case size != "":
		return size
	case h.NAudioLayer == 32 && h.NAudioState == 1280 && h.NMels == 128 && h.NTextLayer == 4:
		return "large-v3-turbo"
	case h.NAudioLayer == 32 && h.NAudioState == 1280 && h.NMels == 128:
		return "large-v3"
	case h.NAudioLayer == 32 && h.NAudioState == 1280:
		return "large-v2"
	}
	return ""
}

// dtwHeads are whisper.cpp's alignment-head presets (g_aheads_* in whisper.cpp 1.9.1):
// {text layer, head}.
var dtwHeads = map[string][][2]int{
	"tiny.en":  {{1, 0}, {2, 0}, {2, 5}, {3, 0}, {3, 1}, {3, 2}, {3, 3}, {3, 4}},
	"tiny":     {{2, 2}, {3, 0}, {3, 2}, {3, 3}, {3, 4}, {3, 5}},
	"base.en":  {{3, 3}, {4, 7}, {5, 1}, {5, 5}, {5, 7}},
	"base":     {{3, 1}, {4, 2}, {4, 3}, {4, 7}, {5, 1}, {5, 2}, {5, 4}, {5, 6}},
	"small.en": {{6, 6}, {7, 0}, {7, 3}, {7, 8}, {8, 2}, {8, 5}, {8, 7}, {9, 0}, {9, 4}, {9, 8}, {9, 10}, {10, 0}, {10, 1}, {10, 2}, {10, 3}, {10, 6}, {10, 11}, {11, 2}, {11, 4}},
	"small":    {{5, 3}, {5, 9}, {8, 0}, {8, 4}, {8, 7}, {8, 8}, {9, 0}, {9, 7}, {9, 9}, {10, 5}},
	"medium.en": {{11, 4}, {14, 1}, {14, 12}, {14, 14}, {15, 4}, {16, 0}, {16, 4}, {16, 9}, {17, 12}, {17, 14}, {18, 7},
		{18, 10}, {18, 15}, {20, 0}, {20, 3}, {20, 9}, {20, 14}, {21, 12}},
	"medium": {{13, 15}, {15, 4}, {15, 15}, {16, 1}, {20, 0}, {23, 4}},
	"large-v2": {{10, 12}, {13, 17}, {16, 11}, {16, 12}, {16, 13}, {17, 15}, {17, 16}, {18, 4}, {18, 11}, {18, 19}, {19, 11},
		{21, 2}, {21, 3}, {22, 3}, {22, 9}, {22, 12}, {23, 5}, {23, 7}, {23, 13}, {25, 5}, {26, 1}, {26, 12}, {27, 15}},
	"large-v3":       {{7, 0}, {10, 17}, {12, 18}, {13, 12}, {16, 1}, {17, 14}, {19, 11}, {21, 4}, {24, 1}, {25, 6}},
	"large-v3-turbo": {{2, 4}, {2, 11}, {3, 3}, {3, 6}, {3, 11}, {3, 14}},
}
