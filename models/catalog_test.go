package models

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestCatalog(t *testing.T) {
	cat := Catalog()
	seen := map[string]bool{}
	for _, c := range cat {
		if seen[c.Name] {
			t.Errorf("duplicate %s", c.Name)
		}
		seen[c.Name] = true
		if c.Kind == KindTurn {
			if c.Licence == "" || c.SHA256 == "" || c.SizeBytes == 0 || c.ChecksumNote == "" {
				t.Errorf("end-of-turn card without licence, checksum or size: %+v", c)
			}
		} else if c.File != "ggml-"+c.Name+".bin" || !strings.HasSuffix(c.URL, "/"+c.File) || c.ChecksumNote == "" {
			t.Errorf("card %+v", c)
		}
		if c.SHA256 != "" {
			if b, err := hex.DecodeString(c.SHA256); err != nil || len(b) != 32 {
				t.Errorf("%s: sha256 %q is not 64 hex digits", c.Name, c.SHA256)
			}
		}
		if c.Kind == KindASR && (strings.Contains(c.Name, ".en") != (c.Languages == "en")) {
			t.Errorf("%s: languages %q", c.Name, c.Languages)
		}
	}
	for _, n := range []string{"tiny", "tiny.en", "base", "base.en", "small", "small.en", "medium", "medium.en",
		"large-v3", "large-v3-turbo", "tiny-q5_1", "tiny-q8_0", "large-v3-turbo-q5_0", "silero-v6.2.0", "smart-turn-v3.2"} {
		if !seen[n] {
			t.Errorf("catalog lacks %s", n)
		}
	}
	if _, err := json.Marshal(cat); err != nil {
		t.Fatal(err)
	}
}

func TestLookup(t *testing.T) {
	for _, n := range []string{"tiny.en", "TINY.EN", "ggml-tiny.en.bin"} {
		c, err := Lookup(n)
		if err != nil || c.Name != "tiny.en" || c.Quantization != "f16" || c.Params != "39M" {
			t.Errorf("Lookup(%q) = %+v, %v", n, c, err)
		}
	}
	c, _ := Lookup("large-v3-turbo-q8_0")
	if c.Quantization != "q8_0" || c.Params != "809M" {
		t.Errorf("turbo q8_0: %+v", c)
	}
	_, err := Lookup("gigantic")
	if !errors.Is(err, ErrUnknownModel) || !strings.Contains(err.Error(), "large-v3-turbo") {
		t.Fatalf("error should list known names: %v", err)
	}
}

func TestSileroChecksumMatchesTestData(t *testing.T) {
	b, err := os.ReadFile(sharedTestdata(t, "models/ggml-silero-v6.2.0.bin"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Lookup("silero-v6.2.0")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != c.SHA256 || int64(len(b)) != c.SizeBytes || c.Kind != KindVAD {
		t.Fatalf("card %+v, file sha256 %x size %d", c, sum, len(b))
	}
}
