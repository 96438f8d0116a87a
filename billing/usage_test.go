package billing

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
)

func TestUsageEndpoint(t *testing.T) {
	s, _ := newStore(t, testPlans(t))
	ctx := context.Background()
	if _, err := s.CreateTenant(ctx, "acme", "payg"); err != nil {
		t.Fatal(err)
	}
	d1 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	d2 := d1.AddDate(0, 0, 1)
	for _, ev := range []bus.UsageEvent{
		usage("acme", "tiny.en", "a", "", 0, 2000, d1, false),
		usage("acme", "base.en", "b", "", 0, 3000, d2, false),
		usage("acme", "tiny.en", "c", "", 0, 500, d2.AddDate(0, 0, 3), false), // outside the range
	} {
		ev.Key = "key-1"
		if ev.Session == "b" {
			ev.Key = ""
		}
		if _, err := s.Apply(ctx, ev, ev.At); err != nil {
			t.Fatal(err)
		}
	}
	h := UsageHandler(s, func(r *http.Request) (bus.TenantID, error) {
		if r.Header.Get("Authorization") != "Token acme" {
			return "", errors.New("bad token")
		}
		return "acme", nil
	})
	get := func(q string) (int, string) {
		req := httptest.NewRequest(http.MethodGet, "/v1/usage?"+q, nil)
		req.Header.Set("Authorization", "Token acme")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code, w.Body.String()
	}
	cases := []struct {
		q     string
		total int64
		rows  map[string]int64
	}{
		{"from=2026-11-27&to=2026-11-28&group_by=model", 5000, map[string]int64{"tiny.en": 2000, "base.en": 3000}},
		{"from=2026-11-27&to=2026-11-28&group_by=day", 5000, map[string]int64{"2026-11-27": 2000, "2026-11-28": 3000}},
		{"from=2026-11-27&to=2026-11-28&group_by=key", 5000, map[string]int64{"key-1": 2000, "-": 3000}},
		{"from=2026-11-28&to=2026-12-01&group_by=model", 3500, map[string]int64{"base.en": 3000, "tiny.en": 500}},
	}
	for _, c := range cases {
		code, body := get(c.q)
		var resp UsageResponse
		if code != 200 || json.Unmarshal([]byte(body), &resp) != nil {
			t.Fatalf("%s: %d %s", c.q, code, body)
		}
		got := map[string]int64{}
		for _, r := range resp.Results {
			got[r.Group] = r.Ms
		}
		if resp.TotalMs != c.total || len(got) != len(c.rows) {
			t.Fatalf("%s: %s", c.q, body)
		}
		for k, v := range c.rows {
			if got[k] != v {
				t.Errorf("%s: %s = %d, want %d", c.q, k, got[k], v)
			}
		}
	}
	for q, param := range map[string]string{
		"from=yesterday":                `"from"`,
		"to=2026-13-01":                 `"to"`,
		"group_by=colour":               `"group_by"`,
		"from=2026-11-28&to=2026-11-01": `"to"`,
		"from=2020-01-01&to=2026-11-01": `"to"`,
	} {
		code, body := get(q)
		var e struct{ Error string }
		_ = json.Unmarshal([]byte(body), &e)
		if code != http.StatusBadRequest || !strings.Contains(e.Error, "bad parameter "+param) {
			t.Errorf("%s: %d %s, want 400 naming %s", q, code, body, param)
		}
	}
	req := httptest.NewRequest(http.MethodGet, "/v1/usage", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", w.Code)
	}
}
