package testdata

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ErrManifest means a manifest file is malformed.
var ErrManifest = errors.New("malformed manifest")

// Item is one utterance of a speech manifest.
type Item struct {
	ID        string
	WAV       string        // absolute path
	Duration  time.Duration // of the WAV file
	OrigRate  int           // sample rate of the original recording; 0 if not given
	Source    string
	License   string
	Reference string // verbatim transcript, not normalised
}

// Manifest files under Dir.
const (
	SpeechManifest   = "speech/manifest.tsv"    // 16 kHz utterances
	PhoneManifest    = "speech/manifest_8k.tsv" // 8 kHz telephony prompts
	LongformManifest = "speech/longform_dev.tsv"
	MandarinManifest = "speech-zh/manifest.tsv" // 16 kHz Mandarin clips (see its provenance.tsv)
	LongformWAV      = "speech/wav16k/longform_dev.wav"
)

// LoadManifest reads a speech manifest (tab-separated, with a header naming at
// least id, wav, duration_s and reference). WAV paths are made absolute,
// relative to the manifest's folder.
func LoadManifest(path string) ([]Item, error) {
	rows, err := readTSV(path, "id", "wav", "duration_s", "reference")
	if err != nil {
		return nil, err
	}
	base := filepath.Dir(path)
	items := make([]Item, 0, len(rows))
	for i, r := range rows {
		d, err := seconds(r["duration_s"])
		if err != nil {
			return nil, fmt.Errorf("%s row %d: duration_s: %w", path, i+2, err)
		}
		it := Item{ID: r["id"], WAV: r["wav"], Duration: d, Source: r["source"], License: r["license"], Reference: r["reference"]}
		if !filepath.IsAbs(it.WAV) {
			if it.WAV, err = filepath.Abs(filepath.Join(base, it.WAV)); err != nil {
				return nil, err
			}
		}
		if s := r["orig_sample_rate"]; s != "" {
			if it.OrigRate, err = strconv.Atoi(s); err != nil {
				return nil, fmt.Errorf("%s row %d: orig_sample_rate %q: %w", path, i+2, s, ErrManifest)
			}
		}
		items = append(items, it)
	}
	return items, nil
}

// Utterance is one span of the long-form recording.
type Utterance struct {
	ID         string
	Start, End time.Duration
	Reference  string
}

// Longform is the long-form recording: utterances separated by silence.
type Longform struct {
	WAV        string // absolute path
	Utterances []Utterance
}

// LoadLongform loads speech/longform_dev.tsv and the path of its WAV from Dir.
func LoadLongform() (Longform, error) {
	d, err := Dir()
	if err != nil {
		return Longform{}, err
	}
	path := filepath.Join(d, LongformManifest)
	rows, err := readTSV(path, "id", "start_s", "end_s", "reference")
	if err != nil {
		return Longform{}, err
	}
	lf := Longform{WAV: filepath.Join(d, LongformWAV)}
	for i, r := range rows {
		u := Utterance{ID: r["id"], Reference: r["reference"]}
		if u.Start, err = seconds(r["start_s"]); err == nil {
			u.End, err = seconds(r["end_s"])
		}
		if err != nil {
			return Longform{}, fmt.Errorf("%s row %d: %w", path, i+2, err)
		}
		if u.End <= u.Start {
			return Longform{}, fmt.Errorf("%s row %d: end %v before start %v: %w", path, i+2, u.End, u.Start, ErrManifest)
		}
		lf.Utterances = append(lf.Utterances, u)
	}
	return lf, nil
}

func readTSV(path string, required ...string) ([]map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	if !sc.Scan() {
		return nil, fmt.Errorf("%s: no header: %w", path, ErrManifest)
	}
	header := strings.Split(strings.TrimRight(sc.Text(), "\r"), "\t")
	for _, want := range required {
		if !contains(header, want) {
			return nil, fmt.Errorf("%s: header lacks column %q: %w", path, want, ErrManifest)
		}
	}
	var rows []map[string]string
	for line := 2; sc.Scan(); line++ {
		text := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(text) == "" {
			continue
		}
		cells := strings.Split(text, "\t")
		if len(cells) != len(header) {
			return nil, fmt.Errorf("%s line %d: %d columns, header has %d: %w", path, line, len(cells), len(header), ErrManifest)
		}
		row := make(map[string]string, len(header))
		for i, h := range header {
			row[h] = cells[i]
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rows, nil
}

func seconds(s string) (time.Duration, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("seconds %q: %w", s, ErrManifest)
	}
	return time.Duration(math.Round(v * float64(time.Second))), nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
