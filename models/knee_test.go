package models

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testKnee(model string, threads, streams int, date string) Knee {
	return Knee{Model: model, CPU: "Test CPU @ 2.0GHz", Cores: 2, Arch: "amd64", Threads: threads, Slots: 1,
		Streams: streams, RuleFinalMs: 1000, RulePartialMs: 2000, FinalP95Ms: 640, Levels: []int{1, 2, 4, 6},
		DurationS: 60, Date: date, Command: "earshot bench --serve", FinalFrom: KneeFromSpeechEnd}
}

func TestKneeFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", KneeFile)
	if k, err := LoadKnees(path); err != nil || k != nil {
		t.Fatalf("missing file: %v, %v; want none and no error", k, err)
	}
	a := testKnee("tiny.en", 2, 4, "2026-12-05T10:00:00Z")
	b := testKnee("base", 2, 2, "2026-12-05T10:05:00Z")
	for _, k := range []Knee{a, b} {
		if err := SaveKnee(path, k); err != nil {
			t.Fatal(err)
		}
	}
	// Measured again: the new knee replaces the old one of the same key, the other stays.
	a2 := testKnee("tiny.en", 2, 6, "2026-12-05T11:00:00Z")
	if err := SaveKnee(path, a2); err != nil {
		t.Fatal(err)
	}
	knees, err := LoadKnees(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(knees) != 2 {
		t.Fatalf("%d records, want 2: %+v", len(knees), knees)
	}
	if k, ok := FindKnee(knees, a.Key()); !ok || k.Streams != 6 || k.Date != a2.Date {
		t.Errorf("tiny.en: %+v, %v; want the newer knee of 6", k, ok)
	}
	if k, ok := FindKnee(knees, b.Key()); !ok || k.Streams != 2 {
		t.Errorf("base: %+v, %v; want 2", k, ok)
	}
	// Another thread count, CPU or core count is another machine as far as the knee goes.
	for _, key := range []KneeKey{
		testKnee("tiny.en", 1, 0, "").Key(),
		{Model: "tiny.en", CPU: "Other CPU", Cores: 2, Arch: "amd64", Threads: 2, Slots: 1},
		{Model: "tiny.en", CPU: a.CPU, Cores: 16, Arch: "amd64", Threads: 2, Slots: 1},
		{Model: "tiny.en", CPU: a.CPU, Cores: 2, Arch: "amd64", GPU: true, Threads: 2, Slots: 1},
	} {
		if k, ok := FindKnee(knees, key); ok {
			t.Errorf("key %+v matched %+v", key, k)
		}
	}
	// A knee from an older build, which timed finals from the endpoint, is not used.
	old := testKnee("tiny.en", 2, 8, "2026-12-05T12:00:00Z")
	old.FinalFrom = ""
	if err := SaveKnee(path, old); err != nil {
		t.Fatal(err)
	}
	if knees, err = LoadKnees(path); err != nil {
		t.Fatal(err)
	}
	if k, ok := FindKnee(knees, a.Key()); ok {
		t.Errorf("an endpoint-timed knee was found: %+v", k)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "*.tmp")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestKneeSessions(t *testing.T) {
	if n := testKnee("m", 2, 0, "").Sessions(); n != 1 {
		t.Errorf("a knee of 0 streams admits %d, want 1", n)
	}
	if n := testKnee("m", 2, 7, "").Sessions(); n != 7 {
		t.Errorf("a knee of 7 admits %d", n)
	}
}

// Without a knee a CPU worker admits 2 streams per core, at least 4; a GPU worker 4.
func TestDefaultMaxSessions(t *testing.T) {
	for _, tc := range []struct {
		cores int
		gpu   bool
		want  int
	}{
		{1, false, 4}, {2, false, 4}, {3, false, 6}, {4, false, 8}, {16, false, 32},
		{0, false, 4}, {2, true, 4}, {64, true, 4},
	} {
		if got := DefaultMaxSessions(tc.cores, tc.gpu); got != tc.want {
			t.Errorf("DefaultMaxSessions(%d cores, gpu %v) = %d, want %d", tc.cores, tc.gpu, got, tc.want)
		}
	}
}

func TestParseKneesRefuses(t *testing.T) {
	for name, doc := range map[string]string{
		"not JSON":      `{"knees": [`,
		"unknown field": `{"knees": [], "extra": 1}`,
		"no model":      `{"knees": [{"cpu": "x", "cores": 2, "threads": 2, "slots": 1, "streams": 4}]}`,
		"no CPU":        `{"knees": [{"model": "tiny.en", "cores": 2, "threads": 2, "slots": 1, "streams": 4}]}`,
		"zero threads":  `{"knees": [{"model": "tiny.en", "cpu": "x", "cores": 2, "threads": 0, "slots": 1, "streams": 4}]}`,
		"negative knee": `{"knees": [{"model": "tiny.en", "cpu": "x", "cores": 2, "threads": 2, "slots": 1, "streams": -1}]}`,
		"huge knee":     `{"knees": [{"model": "tiny.en", "cpu": "x", "cores": 2, "threads": 2, "slots": 1, "streams": 1000000}]}`,
		"two values":    `{"knees": []} {"knees": []}`,
		"too big":       `{"knees": [], "x": "` + strings.Repeat("a", maxKneeFile) + `"}`,
	} {
		if _, err := ParseKnees([]byte(doc)); !errors.Is(err, ErrBadKneeFile) {
			t.Errorf("%s: %v, want ErrBadKneeFile", name, err)
		}
	}
	path := filepath.Join(t.TempDir(), KneeFile)
	if err := os.WriteFile(path, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadKnees(path)
	if !errors.Is(err, ErrBadKneeFile) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "earshot bench --serve") {
		t.Errorf("bad file: %v; want the path and what to do", err)
	}
	if err := SaveKnee(path, testKnee("tiny.en", 2, 4, "d")); !errors.Is(err, ErrBadKneeFile) {
		t.Errorf("saving over a bad file: %v, want it refused, not overwritten", err)
	}
}

func TestCPUName(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct{ info, want string }{
		"x86":   {"processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B12\nflags\t: avx2\n", "AMD EPYC 7B12"},
		"arm64": {"processor\t: 0\nBogoMIPS\t: 50.00\nCPU part\t: 0xd0c\n\nModel\t: Raspberry Pi 5\n", "Raspberry Pi 5"},
		"none":  {"processor\t: 0\nCPU part\t: 0xd0c\n", ""},
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(tc.info), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := cpuName(p); got != tc.want {
			t.Errorf("%s: %q, want %q", name, got, tc.want)
		}
	}
	if got := cpuName(filepath.Join(dir, "missing")); got != "" {
		t.Errorf("missing cpuinfo: %q", got)
	}
}

// FuzzParseKnees: any bytes give records that pass the checks, or ErrBadKneeFile; never
// a panic.
func FuzzParseKnees(f *testing.F) {
	f.Add([]byte(`{"knees": [{"model": "tiny.en", "cpu": "x", "cores": 2, "threads": 2, "slots": 1, "streams": 4}]}`))
	f.Add([]byte(`{"knees": null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		knees, err := ParseKnees(b)
		if err != nil {
			if !errors.Is(err, ErrBadKneeFile) {
				t.Fatalf("error %v is not ErrBadKneeFile", err)
			}
			return
		}
		for _, k := range knees {
			if k.Model == "" || k.CPU == "" || k.Threads < 1 || k.Slots < 1 || k.Cores < 1 || k.Sessions() < 1 || k.Sessions() > 100_000 {
				t.Fatalf("accepted %+v", k)
			}
		}
	})
}

func TestKneeString(t *testing.T) {
	k := testKnee("tiny.en", 2, 4, "2026-12-05T10:00:00Z")
	k.Over = "6 streams: final p95 1505 ms > 1s"
	if s := k.String(); !strings.Contains(s, "4 streams of tiny.en kept final p95 ≤ 1000 ms (640 ms at the knee)") || !strings.Contains(s, "over at 6 streams") {
		t.Errorf("%q", s)
	}
	k.Streams, k.Over = 0, "1 streams: final p95 3418 ms > 1s"
	if s := k.String(); !strings.HasPrefix(s, "not even 1 stream of tiny.en kept final p95 ≤ 1000 ms (1 streams: final p95 3418 ms > 1s) on Test CPU") {
		t.Errorf("%q", s)
	}
	k.Streams, k.Over, k.AtLeast = 2, "", true
	if s := k.String(); !strings.Contains(s, "it may hold more") {
		t.Errorf("%q", s)
	}
}
