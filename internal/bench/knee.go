package bench

import (
	"fmt"
	"time"

	"github.com/earshot-dev/earshot/models"
)

// Knee records are only written from sweeps at least this long per level, and with a
// rule no looser than the defaults (issue 23's targets: every stream keeps real time,
// final p95 ≤ 1 s, partial p95 ≤ 1.5 s): they set how many streams a worker admits.
const (
	MinKneeDuration = 30 * time.Second
	kneeFinalRule   = time.Second
	kneePartialRule = 1500 * time.Millisecond
)

// KneeRecord turns a finished sweep of cfg.Streams levels into the record a worker on
// this machine takes its default --max-sessions from (models.SaveKnee), keyed by key
// (the model, CPU, threads and slots the sweep's server ran with). It refuses, saying
// why, a sweep that cannot set a default: too short, a looser rule, no level run.
func KneeRecord(r *Report, cfg Config, key models.KneeKey, command string) (models.Knee, error) {
	switch {
	case len(r.Levels) == 0:
		return models.Knee{}, fmt.Errorf("no level was run")
	case cfg.Duration < MinKneeDuration:
		return models.Knee{}, fmt.Errorf("--duration %v is under %v per level: too short to set a default", cfg.Duration, MinKneeDuration)
	case cfg.KneeFinalP95 > kneeFinalRule || cfg.KneeP95 > kneePartialRule:
		return models.Knee{}, fmt.Errorf("the rule (--knee %v, --knee-final %v) is looser than %v / %v", cfg.KneeP95, cfg.KneeFinalP95, kneePartialRule, kneeFinalRule)
	case r.EndpointingMs != 0:
		return models.Knee{}, fmt.Errorf("--endpointing %d: a knee sets the default admission, so it is measured at the server's default endpointing", r.EndpointingMs)
	case r.FinalFrom != FinalFromSpeechEnd:
		return models.Knee{}, fmt.Errorf("finals were timed from the %s, not from the speech end (no Silero model to find it: `make model`, or --vad)", r.FinalFrom)
	case key.CPU == "":
		return models.Knee{}, fmt.Errorf("this machine's CPU has no model name in /proc/cpuinfo to key the record by")
	}
	k := models.KneeOf(key)
	k.Streams, k.RuleFinalMs, k.RulePartialMs = r.Knee, r.KneeFinalMs, r.KneeP95Ms
	k.DurationS, k.Language, k.Date, k.Command = r.Duration, r.Language, r.Started.UTC().Format(time.RFC3339), command
	for _, l := range r.Levels {
		k.Levels = append(k.Levels, l.Streams)
		if l.Streams == r.Knee && l.OverKnee == "" {
			k.FinalP95Ms = l.FinalMs.P95
		}
	}
	last := r.Levels[len(r.Levels)-1]
	if last.OverKnee != "" {
		k.Over = fmt.Sprintf("%d streams: %s", last.Streams, last.OverKnee)
	} else {
		k.AtLeast = true
	}
	return k, nil
}
