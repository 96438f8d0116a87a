package hanzi

import (
	"errors"
	"fmt"
	"sync"
	"unicode"
)

// Each converter parses its dictionaries on first use, not at program start,
// so that a service that never sees Chinese never pays for them.
var (
	t2s  = sync.OnceValues(func() (*converter, error) { return load("t2s") })
	s2tw = sync.OnceValues(func() (*converter, error) { return load("s2tw") })
)

// load builds one conversion from the embedded dictionaries.
func load(config string) (*converter, error) {
	chain, ok := configs[config]
	if !ok {
		return nil, fmt.Errorf("load OpenCC %s dictionaries: no such conversion", config)
	}
	c := &converter{}
	for _, files := range chain {
		st, err := newStage(files)
		if err != nil {
			return nil, fmt.Errorf("load OpenCC %s dictionaries: %w (text passes through unconverted)", config, err)
		}
		c.stages = append(c.stages, st)
	}
	return c, nil
}

// ToSimplified converts traditional Chinese characters in s to simplified
// ones (OpenCC t2s, phrase-aware: 乾燥 → 干燥 but 乾隆 stays). Everything that
// is not Chinese text, ASCII and invalid UTF-8 included, is copied byte for
// byte. If the dictionaries cannot be loaded it returns s unchanged; Err says
// why.
func ToSimplified(s string) string { return convert(s, t2s) }

// ToTraditional converts simplified Chinese in s to traditional characters
// as written in Taiwan (OpenCC s2tw: 后来 → 後來, 里 → 裡), the script a zh-TW
// client expects. Characters only, not vocabulary: 软件 becomes 軟件, not the
// Taiwanese word 軟體. Non-Chinese text is copied byte for byte; if the
// dictionaries cannot be loaded it returns s unchanged and Err says why.
func ToTraditional(s string) string { return convert(s, s2tw) }

// Err loads both converters if that has not happened yet and reports why
// either failed, nil if both work. Call it at startup to pay the load cost
// (see the package doc) before the first stream and to log a failure once,
// instead of finding out from unconverted transcripts.
func Err() error {
	_, e1 := t2s()
	_, e2 := s2tw()
	return errors.Join(e1, e2)
}

// convert returns s itself, without loading anything, when it holds no Han
// character: every dictionary key holds one, so nothing could match. A panic
// in the converter (a bug) costs the caller an unconverted text, not its
// goroutine.
func convert(s string, get func() (*converter, error)) (out string) {
	if !hasHan(s) {
		return s
	}
	c, err := get()
	if err != nil {
		return s
	}
	defer func() {
		if recover() != nil {
			out = s
		}
	}()
	return c.apply(s)
}

func hasHan(s string) bool {
	for _, r := range s {
		if r >= 0x2E80 && unicode.Is(unicode.Han, r) {
			return true
		}
	}
	return false
}
