package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/trailwatch/trailwatch/detect"
)

// RetroConfig is detect.retro_hunt: when the running pipeline reloads its
// rules, the new and changed ones are run over the recent past.
type RetroConfig struct {
	// Enabled turns the retro-hunt on. Default false.
	Enabled bool `koanf:"enabled"`
	// LookBack is how far back the events topic is replayed. Default 168h
	// (7 days); it cannot reach past the topic's retention.
	LookBack time.Duration `koanf:"look_back"`
	// Notify pages what the retro-hunt caught through the configured
	// notifiers. Default false: the alerts go to the run's own topic (and
	// index) and the report is logged.
	Notify bool `koanf:"notify"`
}

// DefaultRetroConfig returns the documented defaults.
func DefaultRetroConfig() RetroConfig { return RetroConfig{LookBack: 7 * 24 * time.Hour} }

// Validate reports every problem, each naming its key.
func (c RetroConfig) Validate() error {
	if c.Enabled && c.LookBack <= 0 {
		return errors.New("look_back: must be positive")
	}
	return nil
}

// ChangedRules returns the ids, in load order, of the rules of next that
// prev lacks or whose definition (Rule.Hash: the condition, window, kind,
// and the macros and lists it uses) differs. Title or description edits do
// not count. A nil prev makes every rule new.
func ChangedRules(prev, next *detect.RuleSet) []string {
	old := map[string]string{}
	if prev != nil {
		for _, r := range prev.Rules() {
			old[r.ID] = r.Hash()
		}
	}
	var out []string
	for _, r := range next.Rules() {
		if h, ok := old[r.ID]; !ok || h != r.Hash() {
			out = append(out, r.ID)
		}
	}
	return out
}

// Report is what a retro-hunt found.
type Report struct {
	// Changed are the new or changed rule ids that were run.
	Changed []string `json:"changed"`
	// Result is the replay's; zero when nothing changed.
	Result Result `json:"result"`
}

// String is the one-line account for the log and the console.
func (r Report) String() string {
	if len(r.Changed) == 0 {
		return "retro-hunt: no new or changed rules"
	}
	s := fmt.Sprintf("retro-hunt %s over %s..%s for %s: %d alerts",
		r.Result.RunID, r.Result.From.Format(time.RFC3339), r.Result.To.Format(time.RFC3339), strings.Join(r.Changed, ", "), r.Result.Alerts)
	if len(r.Result.AlertsByRule) > 0 {
		var parts []string
		for _, id := range slices.Sorted(maps.Keys(r.Result.AlertsByRule)) {
			parts = append(parts, fmt.Sprintf("%s %d", id, r.Result.AlertsByRule[id]))
		}
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	return s
}

// RetroHunt runs the rules of next that are new or changed since prev over
// the last rc.LookBack of base's topic (normally the events topic) as a
// replay run named "retro-…", and reports what they would have caught. The
// rest of base (connection, sources, enricher, detector settings, sinks'
// names) is the caller's; base.Rules, From and RunID are set here, and
// base.To, when zero, is now. It returns an empty report, running nothing,
// when no rule changed. The caller decides where the alerts go through
// sink (the run's topic, and the notifiers when rc.Notify).
func RetroHunt(ctx context.Context, prev, next *detect.RuleSet, rc RetroConfig, base Config, sink Sink, logger *slog.Logger) (Report, error) {
	changed := ChangedRules(prev, next)
	rep := Report{Changed: changed}
	if len(changed) == 0 {
		return rep, nil
	}
	if base.To.IsZero() {
		base.To = time.Now()
	}
	if rc.LookBack <= 0 {
		rc.LookBack = DefaultRetroConfig().LookBack
	}
	base.From = base.To.Add(-rc.LookBack)
	base.Rules = next.Subset(changed...)
	if base.RunID == "" {
		base.RunID = newRunID("retro", base.To)
	}
	r, err := New(base, logger)
	if err != nil {
		return rep, fmt.Errorf("retro-hunt: %w", err)
	}
	rep.Result, err = r.Run(ctx, sink)
	if err != nil {
		return rep, fmt.Errorf("retro-hunt: %w", err)
	}
	return rep, nil
}
