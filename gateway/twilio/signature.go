package twilio

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// TwilioSignature computes Twilio's X-Twilio-Signature for a request: base64 of
// HMAC-SHA1, keyed with the account's auth token, over the full URL Twilio requested
// followed, for a POST, by every form parameter as name+value, sorted by name. For
// the Media Streams WebSocket handshake (a GET) there are no parameters: the URL alone
// is signed.
func TwilioSignature(authToken, fullURL string, params url.Values) string {
	var b strings.Builder
	b.WriteString(fullURL)
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		vs := append([]string(nil), params[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			b.WriteString(k)
			b.WriteString(v)
		}
	}
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// ValidTwilioSignature reports whether sig is Twilio's signature of the request, in
// constant time.
func ValidTwilioSignature(authToken, fullURL string, params url.Values, sig string) bool {
	want := TwilioSignature(authToken, fullURL, params)
	return sig != "" && hmac.Equal([]byte(want), []byte(sig))
}

// SignatureHeader is the header that carries a webhook body's signature.
const SignatureHeader = "X-Earshot-Signature"

// SignWebhook returns the X-Earshot-Signature value of body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<unix seconds>.<body>")>".
func SignWebhook(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + webhookMAC(secret, ts, body)
}

func webhookMAC(secret, ts string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// VerifyWebhook checks an X-Earshot-Signature header against body: the MAC must
// match and, when tolerance > 0, the timestamp must be within tolerance of now (replay
// protection). Errors wrap ErrBadSignature. This is what a receiver runs.
func VerifyWebhook(secret, header string, body []byte, tolerance time.Duration, now time.Time) error {
	var ts, v1 string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			if v1 == "" {
				v1 = v
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || v1 == "" {
		return fmt.Errorf("%w: malformed header %q", ErrBadSignature, header)
	}
	if !hmac.Equal([]byte(webhookMAC(secret, ts, body)), []byte(v1)) {
		return fmt.Errorf("%w: MAC mismatch", ErrBadSignature)
	}
	if tolerance > 0 {
		if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
			return fmt.Errorf("%w: timestamp %s is %v from now", ErrBadSignature, ts, d)
		}
	}
	return nil
}
