package prerecorded

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/earshot-dev/earshot/gateway/wire"
)

// TestLanguageOnEnglishOnlyModel: a file sent for a language other than English (or for
// detection) to an English-only model (tiny.en, the real engine) is refused with 400
// naming the language parameter, as the live stream is before its upgrade, and is not
// transcribed as English.
func TestLanguageOnEnglishOnlyModel(t *testing.T) {
	r := newRig(t, nil, nil)
	wav, _ := jfk(t)
	for _, language := range []string{"zh-CN", "fr", "multi"} {
		t.Run(language, func(t *testing.T) {
			resp, body := r.post(t, "acme", "model=tiny.en&language="+language, "audio/wav", "", wav)
			var e wire.HTTPError
			if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != http.StatusBadRequest ||
				e.Param != "language" || !strings.Contains(e.Message, "English only") {
				t.Fatalf("language=%s on tiny.en: %d %s; want 400 naming language (English only)", language, resp.StatusCode, body)
			}
		})
	}
	if resp, body := r.post(t, "acme", "model=tiny.en&language=en-US", "audio/wav", "", wav); resp.StatusCode != http.StatusOK {
		t.Fatalf("language=en-US on tiny.en: %d %s", resp.StatusCode, body)
	}
}
