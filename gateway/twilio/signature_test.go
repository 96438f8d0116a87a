package twilio

import (
	"errors"
	"net/url"
	"testing"
	"time"
)

func TestWebhookSignatureVerifies(t *testing.T) {
	body := []byte(`{"type":"transcript.final","text":"hello"}`)
	now := time.Unix(1_700_000_000, 0)
	h := SignWebhook("whsec", now, body)
	if err := VerifyWebhook("whsec", h, body, 5*time.Minute, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		secret, header string
		body           []byte
		at             time.Time
	}{
		"other secret":  {"nope", h, body, now},
		"tampered body": {"whsec", h, append([]byte(nil), append(body, ' ')...), now},
		"replayed late": {"whsec", h, body, now.Add(10 * time.Minute)},
		"malformed":     {"whsec", "v1=abc", body, now},
	} {
		if err := VerifyWebhook(c.secret, c.header, c.body, 5*time.Minute, c.at); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestTwilioSignatureSortsParams(t *testing.T) {
	u := "https://example.com/voice?x=1"
	a := TwilioSignature("tok", u, url.Values{"To": {"+1"}, "CallSid": {"CA1"}, "From": {"+2"}})
	b := TwilioSignature("tok", u, url.Values{"From": {"+2"}, "CallSid": {"CA1"}, "To": {"+1"}})
	if a != b || !ValidTwilioSignature("tok", u, url.Values{"From": {"+2"}, "CallSid": {"CA1"}, "To": {"+1"}}, a) {
		t.Fatal("parameter order changed the signature")
	}
	if ValidTwilioSignature("tok", u+"&y=2", nil, a) || ValidTwilioSignature("other", u, nil, TwilioSignature("tok", u, nil)) {
		t.Fatal("signature verified for another URL or token")
	}
}
