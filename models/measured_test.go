package models

import (
	"strings"
	"testing"
)

// The committed measured.json parses, names only catalog models, and every measured
// model's card shows its measurement: a broken file or a misspelt name would otherwise
// drop them without a word (MeasuredOf finds nothing).
func TestMeasuredEmbedded(t *testing.T) {
	m, err := parseMeasured(measuredJSON)
	if err != nil {
		t.Fatal(err)
	}
	if err := MeasuredErr(); err != nil {
		t.Fatal(err)
	}
	cards := map[string]Card{}
	for _, c := range Catalog() {
		cards[c.Name] = c
	}
	for name, meas := range m {
		c, ok := cards[name]
		switch {
		case !ok:
			t.Errorf("measured.json has %q, which is not in the catalog", name)
		case c.Measured == nil:
			t.Errorf("card %s shows no measurement", name)
		case meas.SHA256 == "" || meas.SizeBytes == 0 || len(meas.Languages) == 0:
			t.Errorf("measurement of %s is incomplete: %+v", name, meas)
		}
	}
	// Measured for BENCHMARKS.md, "Languages and the model pool".
	for _, name := range []string{"tiny.en", "tiny.en-q8_0", "base", "base-q8_0"} {
		if cards[name].Measured == nil {
			t.Errorf("card %s has lost its measurement", name)
		}
	}
}

func TestParseMeasuredRejects(t *testing.T) {
	for _, b := range []string{`{"base": {"sha256": 1}}`, `{"base": {"languges": {}}}`, `{"base":`} {
		if _, err := parseMeasured([]byte(b)); err == nil || !strings.Contains(err.Error(), "measured.json") {
			t.Errorf("parseMeasured(%s) = %v, want an error naming measured.json", b, err)
		}
	}
}
