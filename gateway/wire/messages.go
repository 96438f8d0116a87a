package wire

// Server message types (the "type" field).
const (
	TypeResults       = "Results"
	TypeSpeechStarted = "SpeechStarted"
	TypeUtteranceEnd  = "UtteranceEnd"
	TypeMetadata      = "Metadata"
	TypeError         = "Error"
)

// ModelInfo describes the model that produced a result.
type ModelInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch"`
}

// Word is one recognised word; times are seconds from the start of the stream.
type Word struct {
	Word           string  `json:"word"`
	Start          float64 `json:"start"`
	End            float64 `json:"end"`
	Confidence     float64 `json:"confidence"`
	PunctuatedWord string  `json:"punctuated_word,omitempty"`
	// Language is the word's language (language=multi or detect_language=true).
	Language string `json:"language,omitempty"`
}

// Alternative is one hypothesis of a result; Earshot sends exactly one.
type Alternative struct {
	Transcript string      `json:"transcript"`
	Confidence float64     `json:"confidence"`
	Words      []Word      `json:"words"`
	Paragraphs *Paragraphs `json:"paragraphs,omitempty"` // pre-recorded, paragraphs=true
	// Languages are the languages heard, most first (language=multi or detect_language).
	Languages []string `json:"languages,omitempty"`
}

// Paragraphs is Deepgram's paragraphs=true shape: the transcript with a blank line
// between paragraphs (and a newline before the first), and each paragraph's sentences.
type Paragraphs struct {
	Transcript string      `json:"transcript"`
	Paragraphs []Paragraph `json:"paragraphs"`
}

// Paragraph is consecutive sentences with no long pause between them.
type Paragraph struct {
	Sentences []Sentence `json:"sentences"`
	NumWords  int        `json:"num_words"`
	Start     float64    `json:"start"`
	End       float64    `json:"end"`
}

// Sentence is words up to one that ends a sentence (. ? ! or their CJK forms).
type Sentence struct {
	Text  string  `json:"text"`
	Start float64 `json:"start"`
	End   float64 `json:"end"`
}

// Channel holds the alternatives of one channel.
type Channel struct {
	Alternatives []Alternative `json:"alternatives"`
	// DetectedLanguage and LanguageConfidence: the language found and its probability
	// (detect_language=true or language=multi; on a live stream, the utterance's).
	DetectedLanguage   string  `json:"detected_language,omitempty"`
	LanguageConfidence float64 `json:"language_confidence,omitempty"`
}

// ResultMetadata identifies the stream and model of a result.
type ResultMetadata struct {
	RequestID string    `json:"request_id"`
	ModelInfo ModelInfo `json:"model_info"`
	ModelUUID string    `json:"model_uuid"`
}

// Results is an interim (IsFinal false) or final transcript of [Start, Start+Duration).
// ChannelIndex is [channel, channel count].
type Results struct {
	Type         string         `json:"type"`
	ChannelIndex []int          `json:"channel_index"`
	Duration     float64        `json:"duration"`
	Start        float64        `json:"start"`
	IsFinal      bool           `json:"is_final"`
	SpeechFinal  bool           `json:"speech_final"`
	FromFinalize bool           `json:"from_finalize"`
	Channel      Channel        `json:"channel"`
	Metadata     ResultMetadata `json:"metadata"`
}

// Transcript returns the first alternative's transcript, or "".
func (r *Results) Transcript() string {
	if len(r.Channel.Alternatives) == 0 {
		return ""
	}
	return r.Channel.Alternatives[0].Transcript
}

// SpeechStarted says voice activity started at Timestamp seconds (vad_events=true).
type SpeechStarted struct {
	Type      string  `json:"type"`
	Channel   []int   `json:"channel"`
	Timestamp float64 `json:"timestamp"`
}

// UtteranceEnd says a gap of utterance_end_ms followed the last word, which ended at LastWordEnd.
type UtteranceEnd struct {
	Type        string  `json:"type"`
	Channel     []int   `json:"channel"`
	LastWordEnd float64 `json:"last_word_end"`
}

// Metadata is the last message of a stream closed with CloseStream (or drained):
// Duration is the accepted audio in seconds, SHA256 the hex digest of the accepted
// audio bytes exactly as the client sent them.
type Metadata struct {
	Type           string               `json:"type"`
	TransactionKey string               `json:"transaction_key"`
	RequestID      string               `json:"request_id"`
	SHA256         string               `json:"sha256"`
	Created        string               `json:"created"` // RFC 3339, UTC
	Duration       float64              `json:"duration"`
	Channels       int                  `json:"channels"`
	Models         []string             `json:"models"`
	ModelInfo      map[string]ModelInfo `json:"model_info"`
}

// Error is sent before the server closes a stream because of a problem, and for
// non-fatal problems (unknown control message, audio too fast) without closing.
type Error struct {
	Type        string    `json:"type"`
	Code        ErrorCode `json:"code"`
	Description string    `json:"description"`
	RequestID   string    `json:"request_id,omitempty"`
}

// NewError builds an Error message.
func NewError(code ErrorCode, description string) *Error {
	return &Error{Type: TypeError, Code: code, Description: description}
}

// HTTPError is the JSON body of every non-2xx HTTP response (Deepgram's REST error shape,
// plus Param when one query parameter is at fault).
type HTTPError struct {
	Code      ErrorCode `json:"err_code"`
	Message   string    `json:"err_msg"`
	Param     string    `json:"param,omitempty"`
	RequestID string    `json:"request_id,omitempty"`
}

// Grant is the body of POST /v1/auth/grant and POST /demo/grant.
type Grant struct {
	AccessToken string  `json:"access_token"`
	ExpiresIn   float64 `json:"expires_in"` // seconds
}

// GrantRequest is the optional body of POST /v1/auth/grant.
type GrantRequest struct {
	TTLSeconds float64 `json:"ttl_seconds,omitempty"`
	Scope      string  `json:"scope,omitempty"` // "listen" (the default and only scope)
	Model      string  `json:"model,omitempty"` // bind the token to this model
}
