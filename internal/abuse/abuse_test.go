package abuse

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
)

// A case is one attack: an id (F1…F12 for the findings of issue 18, H… for doors that
// held when they were first tried), what was tried, and what holding means.
type result struct {
	id, attack, expect string
	held               bool
	skipped            bool
	figures            string // what the case measured (measured)
}

var (
	resultsMu sync.Mutex
	results   []result
	figures   = map[string][]string{} // by test name
)

// measured adds a figure to the running case's row of the report (and the test log).
func measured(t *testing.T, format string, args ...any) {
	t.Helper()
	f := fmt.Sprintf(format, args...)
	t.Log(f)
	resultsMu.Lock()
	defer resultsMu.Unlock()
	figures[t.Name()] = append(figures[t.Name()], f)
}

// attack registers the running test as the abuse case id and records at its end
// whether the door held (the test passed) or failed. Call it first in each test.
func attack(t *testing.T, id, tried, expect string) {
	t.Helper()
	t.Cleanup(func() {
		resultsMu.Lock()
		defer resultsMu.Unlock()
		results = append(results, result{id: id, attack: tried, expect: expect, held: !t.Failed(), skipped: t.Skipped(),
			figures: strings.Join(figures[t.Name()], "; ")})
	})
}

// full reports whether the suite runs at the sizes of the original findings
// (EARSHOT_ABUSE=full, `make abuse`) rather than its CI form.
func full() bool { return os.Getenv("EARSHOT_ABUSE") == "full" }

// pick returns long in the full suite and short in the CI form.
func pick[T any](short, long T) T {
	if full() {
		return long
	}
	return short
}

func TestMain(m *testing.M) {
	code := m.Run()
	report := table()
	fmt.Print(report)
	if p := os.Getenv("EARSHOT_ABUSE_REPORT"); p != "" {
		if err := os.WriteFile(p, []byte(report), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "abuse report %s: %v\n", p, err)
			code = 1
		}
	}
	os.Exit(code)
}

// table renders the results as a Markdown table, ordered by case id.
func table() string {
	resultsMu.Lock()
	defer resultsMu.Unlock()
	rs := append([]result(nil), results...)
	sort.SliceStable(rs, func(i, j int) bool { return caseLess(rs[i].id, rs[j].id) })
	var b strings.Builder
	mode := "short (CI)"
	if full() {
		mode = "full"
	}
	held, failed := 0, 0
	fmt.Fprintf(&b, "\nabuse suite (%s form)\n\n| case | attack | holds when | result |\n|---|---|---|---|\n", mode)
	for _, r := range rs {
		status := "held"
		switch {
		case r.skipped:
			status = "skipped"
		case !r.held:
			status = "**FAILED**"
			failed++
		default:
			held++
		}
		if r.figures != "" {
			status += " (" + r.figures + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.id, r.attack, r.expect, status)
	}
	fmt.Fprintf(&b, "\n%d held, %d failed\n", held, failed)
	return b.String()
}

// caseLess orders F2 before F10 and F… before H….
func caseLess(a, b string) bool {
	if a[0] != b[0] {
		return a[0] < b[0]
	}
	var na, nb int
	var sa, sb string
	fmt.Sscanf(a[1:], "%d%s", &na, &sa)
	fmt.Sscanf(b[1:], "%d%s", &nb, &sb)
	if na != nb {
		return na < nb
	}
	return a < b
}
