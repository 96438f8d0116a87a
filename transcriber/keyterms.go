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

// How key terms bias decoding (TestKeytermRecall measures the choices; BENCHMARKS.md):
// in the prompt, as logit biases on their tokens, or both.
var (
	keytermPrompt = true
	keytermBias   = struct {
		on          bool
		first, next float32
	}{on: true, first: 2, next: 6}
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

// tokenizer is a Model that can count its tokens without a decoder (whisperModel).
type tokenizer interface {
	Tokenize(text string) ([]int, error)
}

// checkKeyterms refuses key terms that take more than maxKeytermTokens of m's vocabulary.
func checkKeyterms(m Model, terms []string) error {
	tk, ok := m.(tokenizer)
	if !ok || len(terms) == 0 {
		return nil
	}
	ids, err := tk.Tokenize(glossary(terms))
	if err != nil {
		if errors.Is(err, ErrClosed) {
			return err
		}
		return &OptionError{"keyterm", fmt.Sprintf("the terms cannot be tokenized: %v", err)}
	}
	if len(ids) > maxKeytermTokens {
		return &OptionError{"keyterm", fmt.Sprintf("the %d terms take %d tokens of model %s's vocabulary; at most %d fit in its prompt: give fewer or shorter terms",
			len(terms), len(ids), m.Name(), maxKeytermTokens)}
	}
	return nil
}
