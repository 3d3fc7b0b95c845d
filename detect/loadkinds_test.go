package detect

import (
	"strings"
	"testing"
	"time"
)

func TestLoadKinds(t *testing.T) {
	rules, err := Parse("kinds.yaml", []byte(`
rules:
  - id: seq
    title: Seq
    sequence:
      by: [user.name]
      within: 10m
      steps:
        - {name: failures, where: 'http.response.status_code == 401', count: 5}
        - {where: 'http.response.status_code == 200'}
  - id: terms
    title: Terms
    where: trailwatch.credential.fingerprint != ""
    new_terms: {by: trailwatch.credential.fingerprint, fields: [source.as.number], history: 30d}
  - id: rate
    title: Rate
    rate: {by: [service.name], interval: 1m, baseline: 1h, factor: 5, min_count: 50}
`))
	if err != nil {
		t.Fatal(err)
	}
	rs := &RuleSet{rules: rules}
	seq := rs.Get("seq")
	if s := seq.Sequence; s == nil || !s.Ordered || s.Within != 10*time.Minute || len(s.Steps) != 2 ||
		s.Steps[0].Count != 5 || s.Steps[1].Name != "step2" || s.Steps[1].Count != 1 {
		t.Errorf("sequence parsed wrong: %+v", seq.Sequence)
	}
	if seq.Where != "true" || seq.Suppress != 10*time.Minute {
		t.Errorf("sequence defaults: where %q suppress %v", seq.Where, seq.Suppress)
	}
	nt := rs.Get("terms").NewTerms
	if nt == nil || nt.History != 30*24*time.Hour || nt.Learning != DefaultLearning || nt.MaxTerms != DefaultMaxTerms || rs.Get("terms").Suppress != 0 {
		t.Errorf("new_terms parsed wrong: %+v", nt)
	}
	r := rs.Get("rate")
	if r.Rate == nil || r.Rate.MinHistory != time.Hour || r.Rate.Factor != 5 || r.Suppress != time.Minute {
		t.Errorf("rate parsed wrong: %+v", r.Rate)
	}
	if got := rs.MaxWindow(); got != 61*time.Minute {
		t.Errorf("MaxWindow %v, want rate baseline+interval (new_terms history is durable, not replayed)", got)
	}
}

func TestLoadKindsBad(t *testing.T) {
	head := "id: x\ntitle: X\n"
	tests := []struct {
		name, src, want string
	}{
		{"step where does not compile", head + "sequence:\n  within: 1m\n  steps:\n    - {where: 'true'}\n    - {where: 'http.nope == 1'}\n",
			"test.yaml:7:16: sequence.steps[1].where: unknown name \"http.nope\""},
		{"one step", head + "sequence:\n  within: 1m\n  steps: [{where: 'true'}]\n", "test.yaml:5:10: sequence.steps: want at least 2 steps, got 1"},
		{"step without where", head + "sequence:\n  within: 1m\n  steps: [{where: 'true'}, {name: b}]\n", "test.yaml:5:28: sequence.steps[1].where: required"},
		{"duplicate step names", head + "sequence:\n  within: 1m\n  steps: [{name: a, where: 'true'}, {name: a, where: 'true'}]\n", "sequence.steps[1].name: \"a\" used by an earlier step"},
		{"missing within", head + "sequence:\n  steps: [{where: 'true'}, {where: 'true'}]\n", "test.yaml:4:3: sequence.within: required"},
		{"bad ordered", head + "sequence: {within: 1m, ordered: maybe, steps: [{where: 'true'}, {where: 'true'}]}\n", "sequence.ordered: want true or false"},
		{"step count too large", head + "sequence: {within: 1m, steps: [{where: 'true', count: 5000}, {where: 'true'}]}\n", "sequence.steps[0].count: 5000 exceeds"},
		{"unknown step field", head + "sequence: {within: 1m, steps: [{where: 'true', cnt: 5}, {where: 'true'}]}\n", "sequence.steps[0].cnt: unknown field"},
		{"two kinds", head + "where: 'true'\nwindow: {count: 2, over: 1m}\nrate: {interval: 1m, baseline: 1h, factor: 2, min_count: 1}\n",
			"test.yaml:5:1: rate: only one of window, sequence, new_terms, rate per rule (window already set at 4:1)"},
		{"window rules still need where", head + "window: {count: 2, over: 1m}\n", "where: required"},
		{"new_terms field not compiling", head + "new_terms: {fields: [source.nope], history: 1d}\n", "new_terms.fields[0]: unknown name \"source.nope\""},
		{"new_terms without history", head + "new_terms: {fields: [source.ip]}\n", "new_terms.history: required"},
		{"new_terms bad days", head + "new_terms: {fields: [source.ip], history: xd}\n", "new_terms.history: want a positive duration such as 1h or 30d"},
		{"new_terms learning past history", head + "new_terms: {fields: [source.ip], history: 1d, learning: 2d}\n", "new_terms.learning: 48h0m0s exceeds history 24h0m0s"},
		{"new_terms field also in by", head + "new_terms: {by: [source.ip], fields: [source.ip], history: 1d}\n", "new_terms.fields[0]: \"source.ip\" is also in by"},
		{"rate baseline not a multiple", head + "rate: {interval: 7m, baseline: 1h, factor: 2, min_count: 1}\n", "rate.baseline: 1h0m0s is not a multiple of interval 7m0s"},
		{"rate too many buckets", head + "rate: {interval: 1s, baseline: 24h, factor: 2, min_count: 1}\n", "rate.baseline: 86400 buckets of 1s exceed 4096"},
		{"rate missing factor", head + "rate: {interval: 1m, baseline: 1h, min_count: 1}\n", "rate.factor: required"},
		{"rate min_history past baseline", head + "rate: {interval: 1m, baseline: 1h, factor: 2, min_count: 1, min_history: 2h}\n", "rate.min_history: 2h0m0s exceeds baseline 1h0m0s"},
		{"rate by not compiling", head + "rate: {by: [http], interval: 1m, baseline: 1h, factor: 2, min_count: 1}\n", "rate.by[0]: \"http\" is of type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(tt.src))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v\nwant it to contain %q", err, tt.want)
			}
		})
	}
}
