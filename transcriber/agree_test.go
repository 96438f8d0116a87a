package transcriber

import (
	"reflect"
	"strings"
	"testing"
)

func TestAgreeLocalAgreement2(t *testing.T) {
	tests := []struct {
		name       string
		hyps       []string
		wantCommit string
		wantTail   string
	}{
		{"one hypothesis commits nothing", []string{"hello world"}, "", "hello world"},
		{"agreed prefix commits", []string{"hello wor", "hello world how"}, "hello", "world how"},
		{"punctuation and case ignored", []string{"Hello, world", "hello world. How"}, "hello world.", "How"},
		{"disagreement commits nothing new", []string{"a b c", "a b c d", "a b c e"}, "a b c", "e"},
		{"unalignable hypothesis continues by position", []string{"a b c", "a b c d", "a b x y"}, "a b c", "y"},
		{"committed kept when whisper changes its mind", []string{"my fellow", "my fellow americans", "by fellow americans ask"}, "my fellow americans", "ask"},
		{"inserted word aligned", []string{"ask not what", "ask not what your", "so ask not what your country"}, "ask not what your", "country"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a agreement
			var tail []string
			for _, h := range tt.hyps {
				tail = a.update(strings.Fields(h), nil, nil, 0, -1)
			}
			if got := strings.Join(a.committed, " "); got != tt.wantCommit {
				t.Errorf("committed %q, want %q", got, tt.wantCommit)
			}
			if got := strings.Join(tail, " "); got != tt.wantTail {
				t.Errorf("tail %q, want %q", got, tt.wantTail)
			}
		})
	}
}

func TestAgreeFinishKeepsCommittedWords(t *testing.T) {
	var a agreement
	a.update(strings.Fields("ask not what your"), nil, nil, 0, -1)
	a.update(strings.Fields("ask not what your country"), nil, nil, 0, -1)
	tests := []struct{ final, want string }{
		{"ask not what your country can do", "ask not what your country can do"},
		{"Ask not, what your country can do.", "ask not what your country can do."},
		{"ask knot what you're country can do", "ask not what your country can do"},
		{"ask not", "ask not what your"},
		{"", "ask not what your"},
	}
	for _, tt := range tests {
		got := strings.Join(first(a.finish(strings.Fields(tt.final), nil, 0)), " ")
		if got != tt.want {
			t.Errorf("finish(%q) = %q, want %q", tt.final, got, tt.want)
		}
	}
	if !reflect.DeepEqual(a.committed, strings.Fields("ask not what your")) {
		t.Errorf("finish changed committed words: %q", a.committed)
	}
}

func TestAgreeNormWord(t *testing.T) {
	for in, want := range map[string]string{"America,": "america", "'Tis": "tis", "don't": "don't", "...": "", "42.": "42"} {
		if got := normWord(in); got != want {
			t.Errorf("normWord(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestAgreeCommitableHoldsBackTheWindowEnd: words the caller marks as too close to the
// window end are not committed even when two hypotheses agree on them.
func TestAgreeCommitableHoldsBackTheWindowEnd(t *testing.T) {
	var a agreement
	a.update(strings.Fields("ask not what your"), nil, nil, 0, 1)
	tail := a.update(strings.Fields("ask not what your country"), nil, nil, 0, 2)
	if got := strings.Join(a.committed, " "); got != "ask not" {
		t.Errorf("committed %q, want the first 2 words only", got)
	}
	if got := strings.Join(tail, " "); got != "what your country" {
		t.Errorf("tail %q", got)
	}
	if n := commitable(strings.Fields("aa bb"), 0, 4*16000, 2*16000); n != 1 {
		t.Errorf("commitable %d, want 1 (\"bb\" ends at 4 s, within 2 s of the end)", n)
	}
}

// TestAlignTrimmedWindow: a trimmed window's hypothesis starts a few committed words
// before their end (skip of them are in the prompt); align finds the end of the committed
// words in it, or reports that it cannot, so the final is decoded again untrimmed.
func TestAlignTrimmedWindow(t *testing.T) {
	committed := strings.Fields("it was not so much the loss of the carton")
	// the window's first word heard cut ("look" for "took"): the last committed word
	// alone places the rest there
	if rest, ok := align(strings.Fields("for although the chinese took impressions"), strings.Fields("look impressions from wood blocks"), 4); !ok || strings.Join(rest, " ") != "from wood blocks" {
		t.Errorf("a window whose first word was heard cut: rest %q, aligned %v; want \"from wood blocks\", true", strings.Join(rest, " "), ok)
	}
	for _, tt := range []struct {
		hyp  string
		skip int
		rest string
		ok   bool
	}{
		{"loss of the carton itself but the fantasy", 6, "itself but the fantasy", true},
		{"much the loss of the carton itself", 6, "itself", true}, // window starts 2 words early
		{"the carton itself", 8, "itself", true},
		{"mr g but please you to consider", 6, "", false},
		// whisper said the window's prompt again: six words before where they should be,
		// beyond maxTrimShift; the last three committed words in a row place the rest.
		{"it was not so much the loss of the carton itself", 6, "itself", true},
		// no three in a row beyond the reach: not aligned, the rest by position
		{"so much the loss of a carton itself", 8, "", false},
	} {
		rest, ok := align(committed, strings.Fields(tt.hyp), tt.skip)
		if ok != tt.ok || (ok && strings.Join(rest, " ") != tt.rest) {
			t.Errorf("align(%q, skip %d) = %q, %v; want %q, %v", tt.hyp, tt.skip, strings.Join(rest, " "), ok, tt.rest, tt.ok)
		}
	}
}

// TestAgreeTrimmedUnalignedCommitsNothing: a trimmed window's words that cannot be
// joined to the committed ones commit nothing, however often they repeat: by position
// they could repeat committed words ("not so much the loss not so much the loss").
func TestAgreeTrimmedUnalignedCommitsNothing(t *testing.T) {
	a := &agreement{committed: strings.Fields("it was not so much the loss"), ends: make([]uint64, 7), times: make([]wordTime, 7)}
	hyp := strings.Fields("mr g but please you to consider")
	for range 3 {
		if tail := a.update(hyp, nil, nil, 5, -1); len(tail) == 0 {
			t.Error("an unaligned window shows no words")
		}
	}
	if got := strings.Join(a.committed, " "); got != "it was not so much the loss" {
		t.Errorf("committed %q after three unaligned trimmed windows, want the seven words before them", got)
	}
	// The next aligned window commits again, once two agree.
	for _, h := range []string{"so much the loss of the carton", "so much the loss of the carton itself"} {
		a.update(strings.Fields(h), nil, nil, 3, -1)
	}
	if got := strings.Join(a.committed, " "); got != "it was not so much the loss of the carton" {
		t.Errorf("committed %q after two aligned windows, want %q", got, "it was not so much the loss of the carton")
	}
}

func first(words []string, _ []wordTime, _ bool) []string { return words }
