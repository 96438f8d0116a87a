package transcriber

import (
	"errors"
	"fmt"
	"strings"
)

// OptionError is a session option the worker cannot honour: the gateway answers the
// client with a 400 naming Param.
type OptionError struct {
	Param  string
	Reason string
}

func (e *OptionError) Error() string { return e.Param + ": " + e.Reason }

// Key terms bias decoding both ways: in the prompt (glossary) and as logit biases on
// their tokens, +keytermFirstBias on a term's first token and +keytermNextBias on each
// token that continues a term just begun. TestKeytermRecall measured the choices
// (BENCHMARKS.md, "Key terms"): prompt alone 4/17 terms, bias alone 2/17, both 10/17,
// the least bias of the plateau.
const (
	keytermFirstBias = 2
	keytermNextBias  = 6
)

// maxKeytermTokens is the share of whisper's 224-token prompt the key terms may take;
// the stream's earlier text keeps the rest (at most maxPromptTokens of it).
const maxKeytermTokens = 150

// glossary is the prompt text that biases decoding towards the session's key terms:
// whisper continues a prompt's vocabulary and spelling (the initial-prompt technique
// OpenAI documents for names and jargon). Measured against the terms alone in the
// prompt by TestKeytermRecall (BENCHMARKS.md, "Key terms").
func glossary(terms []string) string {
	if len(terms) == 0 {
		return ""
	}
	return "Glossary: " + strings.Join(terms, ", ") + "."
}

// tokenizer is a Model that can tokenize without a decoder (whisperModel).
type tokenizer interface {
	Tokenize(text string) ([]int, error)
}

// keyterms are a session's key terms in its model's tokens, made once when it opens.
type keyterms struct {
	prompt []int   // the glossary, ahead of the stream's own text in every decode's prompt
	bias   [][]int // each term (with a leading space), for the logit bias
}

// tokenizeKeyterms tokenizes a session's terms for m, refusing a list whose glossary
// takes more than maxKeytermTokens. A model that cannot tokenize gets no biasing.
func tokenizeKeyterms(m Model, terms []string) (keyterms, error) {
	tk, ok := m.(tokenizer)
	if !ok || len(terms) == 0 {
		return keyterms{}, nil
	}
	bad := func(err error) error {
		if errors.Is(err, ErrClosed) {
			return err
		}
		return &OptionError{"keyterm", fmt.Sprintf("the terms cannot be tokenized: %v", err)}
	}
	var kt keyterms
	var err error
	if kt.prompt, err = tk.Tokenize(glossary(terms)); err != nil {
		return keyterms{}, bad(err)
	}
	if len(kt.prompt) > maxKeytermTokens {
		return keyterms{}, &OptionError{"keyterm", fmt.Sprintf("the %d terms take %d tokens of model %s's vocabulary; at most %d fit in its prompt: give fewer or shorter terms",
			len(terms), len(kt.prompt), m.Name(), maxKeytermTokens)}
	}
	for _, term := range terms {
		ids, err := tk.Tokenize(" " + term)
		if err != nil {
			return keyterms{}, bad(err)
		}
		if len(ids) > 0 {
			kt.bias = append(kt.bias, ids)
		}
	}
	return kt, nil
}
