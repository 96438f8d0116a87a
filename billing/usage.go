package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/redis/go-redis/v9"
)

// MaxQueryDays bounds one usage query.
const MaxQueryDays = 400

// UsageRow is one group of a usage query.
type UsageRow struct {
	Group string `json:"group"` // model, day (YYYY-MM-DD) or API key id ("-" for none)
	Ms    int64  `json:"ms"`
	Hours string `json:"hours"`
}

// UsageQuery sums tenant's audio over the UTC days d with from <= d < to (both
// truncated to days), grouped by "model", "day" or "key", sorted by group.
func (s *Store) UsageQuery(ctx context.Context, tenant bus.TenantID, from, to time.Time, groupBy string) ([]UsageRow, error) {
	if err := ValidTenantID(tenant); err != nil {
		return nil, err
	}
	kind := "d"
	switch groupBy {
	case "model", "day":
	case "key":
		kind = "dk"
	default:
		return nil, fmt.Errorf("%w: group_by %q is not model, day or key", ErrBadQuery, groupBy)
	}
	from, to = day(from), day(to)
	n := int(to.Sub(from).Hours() / 24)
	if n <= 0 || n > MaxQueryDays {
		return nil, fmt.Errorf("%w: range of %d days (want 1..%d)", ErrBadQuery, n, MaxQueryDays)
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, n)
	days := make([]string, n)
	for i := range n {
		days[i] = from.AddDate(0, 0, i).Format("2006-01-02")
		cmds[i] = pipe.HGetAll(ctx, usageKey(tenant, kind, days[i]))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("usage query %s: %w", tenant, err)
	}
	sums := map[string]int64{}
	for i, c := range cmds {
		for f, v := range c.Val() {
			var ms int64
			if _, err := fmt.Sscan(v, &ms); err != nil {
				return nil, fmt.Errorf("usage %s %s field %s: %w", tenant, days[i], f, err)
			}
			g := f
			if groupBy == "day" {
				g = days[i]
			}
			sums[g] += ms
		}
	}
	rows := make([]UsageRow, 0, len(sums))
	for g, ms := range sums {
		rows = append(rows, UsageRow{Group: g, Ms: ms, Hours: formatHours(ms)})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Group < rows[j].Group })
	return rows, nil
}

func day(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// UsageResponse is the JSON body of GET /v1/usage.
type UsageResponse struct {
	Tenant  bus.TenantID `json:"tenant"`
	From    string       `json:"from"`
	To      string       `json:"to"`
	GroupBy string       `json:"group_by"`
	TotalMs int64        `json:"total_ms"`
	Results []UsageRow   `json:"results"`
}

// UsageHandler serves GET /v1/usage?from=YYYY-MM-DD&to=YYYY-MM-DD&group_by=model|day|key
// for the tenant tenantFromRequest authenticates (an error there is a 401). from
// defaults to the first day of this month and to (inclusive) to today, UTC. A bad
// parameter is a 400 whose JSON error names it.
func UsageHandler(store *Store, tenantFromRequest func(*http.Request) (bus.TenantID, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			writeJSONError(w, http.StatusMethodNotAllowed, "method not allowed: use GET")
			return
		}
		tenant, err := tenantFromRequest(r)
		if err != nil {
			writeJSONError(w, http.StatusUnauthorized, "unauthorized: "+err.Error())
			return
		}
		q := r.URL.Query()
		now := day(store.now())
		from, to := now.AddDate(0, 0, 1-now.Day()), now
		for _, p := range []struct {
			name string
			dst  *time.Time
		}{{"from", &from}, {"to", &to}} {
			if v := q.Get(p.name); v != "" {
				t, err := time.Parse("2006-01-02", v)
				if err != nil {
					writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("bad parameter %q: %q is not a date YYYY-MM-DD", p.name, v))
					return
				}
				*p.dst = t
			}
		}
		groupBy := q.Get("group_by")
		if groupBy == "" {
			groupBy = "model"
		}
		if groupBy != "model" && groupBy != "day" && groupBy != "key" {
			writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("bad parameter \"group_by\": %q is not model, day or key", groupBy))
			return
		}
		if to.Before(from) || to.Sub(from) >= MaxQueryDays*24*time.Hour {
			writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("bad parameter \"to\": must be on or after \"from\" and within %d days of it", MaxQueryDays))
			return
		}
		rows, err := store.UsageQuery(r.Context(), tenant, from, to.AddDate(0, 0, 1), groupBy)
		if err != nil {
			store.log.Error("usage query", "tenant", tenant, "err", err)
			writeJSONError(w, http.StatusInternalServerError, "usage temporarily unavailable")
			return
		}
		resp := UsageResponse{Tenant: tenant, From: from.Format("2006-01-02"), To: to.Format("2006-01-02"), GroupBy: groupBy, Results: rows}
		for _, row := range rows {
			resp.TotalMs += row.Ms
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
	})
}

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
