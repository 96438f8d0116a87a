package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Credentials authenticate the bench's streams and usage queries: an API key, a fixed
// token, or (neither given) a demo token from POST /demo/grant per stream (a token
// opens one stream; demo grants are rate-limited and the demo tenant is capped, so
// give --key for anything but a short run). Safe for concurrent use.
type Credentials struct {
	Key   string
	Token string
	Base  string // http(s)://host:port of the gateway (for /demo/grant and /v1/usage)

	mu sync.Mutex
}

// HTTPBase turns a ws(s):// URL of /v1/listen into the http(s):// base of the gateway.
func HTTPBase(wsURL string) string {
	base := strings.Replace(strings.Replace(wsURL, "wss://", "https://", 1), "ws://", "http://", 1)
	if i := strings.Index(base, "/v1/"); i >= 0 {
		base = base[:i]
	}
	return strings.TrimRight(base, "/")
}

// Auth returns the key and token to use now (one of them set).
func (c *Credentials) Auth(ctx context.Context) (key, token string, err error) {
	if c.Key != "" || c.Token != "" {
		return c.Key, c.Token, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var g struct {
		AccessToken string  `json:"access_token"`
		ExpiresIn   float64 `json:"expires_in"`
	}
	for attempt := 0; ; attempt++ {
		status, err := c.do(ctx, http.MethodPost, "/demo/grant", "", &g)
		if err == nil && status == http.StatusOK && g.AccessToken != "" {
			break
		}
		if status == http.StatusTooManyRequests && attempt < 10 {
			time.Sleep(2 * time.Second)
			continue
		}
		if err == nil {
			err = fmt.Errorf("HTTP %d (is the server started with --demo? else give --key)", status)
		}
		return "", "", fmt.Errorf("demo token from %s/demo/grant: %w", c.Base, err)
	}
	return "", g.AccessToken, nil
}

// UsageMs returns the tenant's billed milliseconds this month from GET /v1/usage, or
// ok=false when the server has no usage endpoint or refuses the credentials (tokens:
// /v1/usage needs an API key).
func (c *Credentials) UsageMs(ctx context.Context) (ms int64, ok bool) {
	key, token, err := c.Auth(ctx)
	if err != nil {
		return 0, false
	}
	auth := "Token " + key
	if token != "" {
		auth = "Bearer " + token
	}
	var u struct {
		TotalMs int64 `json:"total_ms"`
	}
	status, err := c.do(ctx, http.MethodGet, "/v1/usage", auth, &u)
	if err != nil || status != http.StatusOK {
		return 0, false
	}
	return u.TotalMs, true
}

func (c *Credentials) do(ctx context.Context, method, path, auth string, into any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, nil)
	if err != nil {
		return 0, err
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	return resp.StatusCode, json.NewDecoder(resp.Body).Decode(into)
}
