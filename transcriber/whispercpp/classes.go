package whispercpp

/*
#include <whisper.h>
*/
import "C"

import (
	"fmt"
	"unicode/utf8"
)

// TokenClasses are classes of a model's text tokens for Params.DraftClasses (whisper
// patch 0014): where the decoder samples a text token and the draft's next text token is
// another of its class, the draft's token is taken instead. Made by Model.TokenClasses;
// read-only, safe to share between States of that model.
type TokenClasses struct {
	m     *Model
	class []C.int32_t // class[id]: the smallest token id of id's class
	n     int         // tokens in a class with another (two or more members each)
}

// Shared is how many tokens have another token of their class.
func (c *TokenClasses) Shared() int { return c.n }

// Same reports whether tokens a and b are of one class.
func (c *TokenClasses) Same(a, b int) bool {
	return a >= 0 && b >= 0 && a < len(c.class) && b < len(c.class) && c.class[a] == c.class[b]
}

// TokenClasses puts the model's text tokens (ids below EOT) whose text is valid UTF-8
// into one class when key gives them the same non-empty string (e.g. the text in one
// script of Chinese); every other token is a class of its own.
func (m *Model) TokenClasses(key func(text string) string) (*TokenClasses, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed || m.ctx == nil {
		return nil, ErrClosed
	}
	if m.eot <= 0 {
		return nil, fmt.Errorf("token classes: model has no text tokens: %w", ErrInvalid)
	}
	c := &TokenClasses{m: m, class: make([]C.int32_t, m.eot)}
	first := map[string]int{}
	members := map[int]int{}
	for id := range m.eot {
		c.class[id] = C.int32_t(id)
		t := C.GoString(C.whisper_token_to_str(m.ctx, C.whisper_token(id)))
		if t == "" || !utf8.ValidString(t) {
			continue
		}
		k := key(t)
		if k == "" {
			continue
		}
		if f, ok := first[k]; ok {
			c.class[id] = C.int32_t(f)
			members[f]++
			continue
		}
		first[k] = id
		members[id] = 1
	}
	for _, n := range members {
		if n > 1 {
			c.n += n
		}
	}
	return c, nil
}
