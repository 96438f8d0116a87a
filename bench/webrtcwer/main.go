// Command webrtcwer turns the results of web/sdk/scripts/bench-webrtc.mjs into the
// markdown report of `make bench-webrtc`: word error rate (internal/wer) per browser
// audio-processing configuration and run, the median over runs, errors per clip, the
// capture's level and onset, and the JFK transcript of each configuration.
//
//	go run ./bench/webrtcwer bench/out/webrtc/results.json > bench/out/webrtc/report.md
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/earshot-dev/earshot/internal/wer"
)

type result struct {
	Run         int     `json:"run"`
	Clip        string  `json:"clip"`
	Config      string  `json:"config"`
	Ref         string  `json:"ref"`
	Hyp         string  `json:"hyp"`
	Error       string  `json:"error"`
	OnsetShiftS float64 `json:"onsetShiftS"`
	LevelDb     float64 `json:"levelDb"`
	Settings    *struct {
		EchoCancellation bool `json:"echoCancellation"`
		NoiseSuppression bool `json:"noiseSuppression"`
		AutoGainControl  bool `json:"autoGainControl"`
		SampleRate       int  `json:"sampleRate"`
	} `json:"settings"`
	ContextRate int `json:"contextRate"`
}

type file struct {
	Date    string                     `json:"date"`
	Model   string                     `json:"model"`
	Configs map[string]json.RawMessage `json:"configs"`
	Results []result                   `json:"results"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: webrtcwer results.json")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "webrtcwer:", err)
		os.Exit(1)
	}
}

func run(path string, w io.Writer) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var f file
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var configs, clips []string
	runs := 0
	for _, r := range f.Results {
		if !slices.Contains(configs, r.Config) {
			configs = append(configs, r.Config)
		}
		if !slices.Contains(clips, r.Clip) {
			clips = append(clips, r.Clip)
		}
		runs = max(runs, r.Run)
	}
	type key struct {
		config string
		run    int
	}
	corpus := map[key]*wer.Corpus{}
	perClip := map[string]map[string][]int{} // config → clip → errors per run
	failed := map[string]int{}
	onsets, levels := map[string][]float64{}, map[string][]float64{}
	settings := map[string]string{}
	jfk := map[string][]string{}
	for _, r := range f.Results {
		k := key{r.Config, r.Run}
		if corpus[k] == nil {
			corpus[k] = &wer.Corpus{}
		}
		c := corpus[k].Add(r.Ref, r.Hyp)
		if perClip[r.Config] == nil {
			perClip[r.Config] = map[string][]int{}
		}
		perClip[r.Config][r.Clip] = append(perClip[r.Config][r.Clip], c.Errors())
		if r.Error != "" {
			failed[r.Config]++
		}
		if r.Settings != nil {
			onsets[r.Config] = append(onsets[r.Config], r.OnsetShiftS)
			levels[r.Config] = append(levels[r.Config], r.LevelDb)
			s := r.Settings
			settings[r.Config] = fmt.Sprintf("EC %s, NS %s, AGC %s, track %d Hz, context %d Hz",
				onOff(s.EchoCancellation), onOff(s.NoiseSuppression), onOff(s.AutoGainControl), s.SampleRate, r.ContextRate)
		}
		if strings.Contains(r.Clip, "jfk") {
			jfk[r.Config] = append(jfk[r.Config], fmt.Sprintf("run %d: %q (%d errors)", r.Run, r.Hyp, c.Errors()))
		}
	}

	fmt.Fprintf(w, "Results of %s (%s, model %s): %d clips, %d runs.\n\n", path, f.Date, f.Model, len(clips), runs)
	fmt.Fprintln(w, "| configuration | constraints as applied | WER median | WER per run | errors / words per run | level vs clip (median) | onset shift (median) | failed streams |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, cfg := range configs {
		var rates []float64
		var perRun, counts []string
		for r := 1; r <= runs; r++ {
			c := corpus[key{cfg, r}]
			if c == nil {
				continue
			}
			rates = append(rates, c.WER())
			perRun = append(perRun, fmt.Sprintf("%.1f", 100*c.WER()))
			counts = append(counts, fmt.Sprintf("%d/%d", c.Errors(), c.Ref))
		}
		set, level, onset := "(16 kHz samples from Node, no browser)", "", ""
		if s, ok := settings[cfg]; ok {
			set = s
			level = fmt.Sprintf("%+.1f dB", median(levels[cfg]))
			onset = fmt.Sprintf("%+.0f ms", 1000*median(onsets[cfg]))
		}
		fmt.Fprintf(w, "| %s | %s | **%.1f %%** | %s | %s | %s | %s | %d |\n", cfg, set, 100*median(rates),
			strings.Join(perRun, " / "), strings.Join(counts, ", "), level, onset, failed[cfg])
	}

	fmt.Fprintln(w, "\nWord errors per clip (each run):")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "| clip | %s |\n|---|%s\n", strings.Join(configs, " | "), strings.Repeat("---|", len(configs)))
	for _, clip := range clips {
		cells := make([]string, len(configs))
		for i, cfg := range configs {
			cells[i] = strings.Trim(strings.Join(strings.Fields(fmt.Sprint(perClip[cfg][clip])), " "), "[]")
		}
		fmt.Fprintf(w, "| %s | %s |\n", clip, strings.Join(cells, " | "))
	}

	if len(jfk) > 0 {
		fmt.Fprintln(w, "\nJFK transcripts:")
		fmt.Fprintln(w)
		for _, cfg := range configs {
			for _, line := range jfk[cfg] {
				fmt.Fprintf(w, "- %s, %s\n", cfg, line)
			}
		}
	}
	return nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
