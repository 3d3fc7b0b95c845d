package route

import "testing"

func TestMatch(t *testing.T) {
	a := Alert{Severity: "high", Tags: []string{"attack.t1110", "owasp.api2"}, Rule: "auth-bruteforce", Routes: []string{"secops"}}
	tests := []struct {
		name string
		m    Match
		want bool
	}{
		{name: "empty matches all", m: Match{}, want: true},
		{name: "severity hit", m: Match{Severity: []string{"high", "critical"}}, want: true},
		{name: "severity miss", m: Match{Severity: []string{"critical"}}},
		{name: "any tag", m: Match{Tags: []string{"x", "attack.t1110"}}, want: true},
		{name: "tag miss", m: Match{Tags: []string{"x"}}},
		{name: "rule hit", m: Match{Rules: []string{"auth-bruteforce"}}, want: true},
		{name: "route hit", m: Match{Routes: []string{"secops"}}, want: true},
		{name: "route miss", m: Match{Routes: []string{"platform"}}},
		{name: "all lists must hit", m: Match{Severity: []string{"high"}, Rules: []string{"other"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.m.Matches(a); got != tt.want {
				t.Errorf("Matches = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMatchValidate(t *testing.T) {
	if err := (Match{Severity: []string{"hihg"}}).Validate(); err == nil {
		t.Error("unknown severity accepted")
	}
	if err := (Match{Severity: []string{"low"}}).Validate(); err != nil {
		t.Error(err)
	}
}
