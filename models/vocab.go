package models

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// gpt2ByteDecoder inverts GPT-2's bytes_to_unicode: the printable bytes
// 0x21–0x7E, 0xA1–0xAC and 0xAE–0xFF stand for themselves; the other 68
// bytes, in ascending order, are written as U+0100…U+0143.
var gpt2ByteDecoder = func() map[rune]byte {
	m := make(map[rune]byte, 256)
	next := rune(0x100)
	for b := 0; b < 256; b++ {
		if (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff) {
			m[rune(b)] = byte(b)
		} else {
			m[next] = byte(b)
			next++
		}
	}
	return m
}()

// decodeGPT2Token turns a byte-level BPE token string ("Ġthe") into the raw
// bytes it stands for (" the").
func decodeGPT2Token(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i, r := range s {
		if r == utf8.RuneError {
			return nil, fmt.Errorf("invalid UTF-8 at byte %d", i)
		}
		b, ok := gpt2ByteDecoder[r]
		if !ok {
			return nil, fmt.Errorf("code point %U is not a GPT-2 byte", r)
		}
		out = append(out, b)
	}
	return out, nil
}

// readCT2Vocabulary reads vocabulary.json (a JSON array, newer CTranslate2)
// or vocabulary.txt (one token per line, "\n"-separated), .json first like
// CTranslate2's own reader.
func readCT2Vocabulary(dir string) ([]string, string, error) {
	p := filepath.Join(dir, "vocabulary.json")
	if b, err := os.ReadFile(p); err == nil {
		var toks []string
		if err := json.Unmarshal(b, &toks); err != nil {
			return nil, p, fmt.Errorf("%w: %s: %v", ErrBadModelFile, p, err)
		}
		return toks, p, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, p, err
	}
	p = filepath.Join(dir, "vocabulary.txt")
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, p, fmt.Errorf("%w: no vocabulary.json or vocabulary.txt in %s: %v", ErrBadModelFile, dir, err)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	lines := strings.Split(string(b), "\n")
	allCR := len(lines) > 0
	for _, l := range lines {
		if !strings.HasSuffix(l, "\r") {
			allCR = false
			break
		}
	}
	if allCR {
		for i := range lines {
			lines[i] = strings.TrimSuffix(lines[i], "\r")
		}
	}
	return lines, p, nil
}

// ggmlVocab builds the vocabulary block of whisper.cpp's published ggml files:
// ids 0..eot-1 as raw bytes, and for English-only vocabularies the literal
// "<|endoftext|>" at eot (50256): 50,257 entries either way. A multilingual
// vocabulary stops before its eot (50257): its last entry, 50256, is the empty
// slot, and neither of whisper.cpp's converters (convert-pt-to-ggml.py, from
// multilingual.tiktoken or from the older multilingual/vocab.json, which keeps
// <|endoftext|> in added_tokens.json) writes an <|endoftext|>; ggml-base.bin is
// 147,951,465 bytes, not the 147,951,482 an extra entry (4 + 13 bytes) makes.
// The published English files were converted from gpt2/vocab.json before
// whisper.cpp PR #725 dropped its <|endoftext|>, so they keep it. The loader
// names the remaining special and timestamp tokens itself.
func ggmlVocab(tokens []string, nVocab int) ([][]byte, error) {
	eot := 50256
	if nVocab >= 51865 {
		eot = 50257
	}
	if len(tokens) <= eot {
		return nil, fmt.Errorf("%w: vocabulary has %d tokens, need more than %d", ErrBadModelFile, len(tokens), eot)
	}
	if tokens[eot] != "<|endoftext|>" {
		return nil, fmt.Errorf("%w: token %d is %q, want <|endoftext|>", ErrBadModelFile, eot, tokens[eot])
	}
	out := make([][]byte, 0, eot+1)
	hasSpace := false
	for id, s := range tokens[:eot] {
		b, err := decodeGPT2Token(s)
		if err != nil {
			// Multilingual tokenizers keep an empty/unused slot; anything
			// else that is not byte-level is a broken vocabulary.
			if s == "" || strings.HasPrefix(s, "<|") {
				b = []byte(s)
			} else {
				return nil, fmt.Errorf("%w: token %d %q: %v", ErrBadModelFile, id, s, err)
			}
		}
		hasSpace = hasSpace || string(b) == " "
		out = append(out, b)
	}
	if !hasSpace {
		return nil, fmt.Errorf("%w: vocabulary has no \" \" token (whisper.cpp needs it)", ErrBadModelFile)
	}
	if nVocab >= 51865 {
		return out, nil
	}
	return append(out, []byte(tokens[eot])), nil
}
