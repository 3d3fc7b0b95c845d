package ruletest

import (
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/detect"
)

func TestRun(t *testing.T) {
	rs, err := detect.LoadFiles("testdata/mixed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	results := Run(rs)
	tests := []struct {
		test    string
		passed  bool
		failure []string
	}{
		{test: "passes", passed: true},
		{test: "wrong group", failure: []string{
			"want 1 alert(s):",
			"- [0] count=2 group={source.ip=192.0.2.99}",
			"got 1 alert(s):",
			"+ [0] count=2 group={source.ip=192.0.2.1} at 2025-01-01T00:00:01Z: Two failures: 2 events in 10s for source.ip=192.0.2.1",
		}},
		{test: "expects none but one fires", failure: []string{"want 0 alert(s):", "+ [0] count=2"}},
		{test: "explicit timestamps beat defaults", passed: true},
		{test: "run-time error fails the test", failure: []string{"run-time error: rule errors-at-run-time on event test-0:"}},
	}
	if len(results) != len(tests) {
		t.Fatalf("got %d results, want %d", len(results), len(tests))
	}
	for i, tt := range tests {
		t.Run(tt.test, func(t *testing.T) {
			res := results[i]
			if res.Test != tt.test {
				t.Fatalf("result %d is %q", i, res.Test)
			}
			if res.Passed() != tt.passed {
				t.Fatalf("passed = %v, want %v:\n%s", res.Passed(), tt.passed, res)
			}
			for _, want := range tt.failure {
				if !strings.Contains(res.Failure, want) {
					t.Errorf("failure lacks %q:\n%s", want, res.Failure)
				}
			}
			if !res.Passed() && !strings.HasPrefix(res.String(), "FAIL "+res.RuleID) || !strings.Contains(res.Pos, "testdata/mixed.yaml:") {
				t.Errorf("report: %s (pos %s)", res, res.Pos)
			}
		})
	}
}

func TestEventsDefaults(t *testing.T) {
	rs, err := detect.LoadFiles("testdata/mixed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tcs := rs.Get("two-fails").Tests
	evs := Events(tcs[0])
	if !evs[0].Timestamp.Equal(DefaultStart) || !evs[1].Timestamp.Equal(DefaultStart.Add(time.Second)) {
		t.Errorf("default timestamps: %v, %v", evs[0].Timestamp, evs[1].Timestamp)
	}
	if evs[1].Event.ID != "test-1" {
		t.Errorf("default id: %q", evs[1].Event.ID)
	}
	if tcs[0].Events[0].Timestamp != (time.Time{}) {
		t.Error("Events must not modify the rule's test case")
	}
	explicit := Events(tcs[3])
	if want := DefaultStart.Add(30 * time.Second); !explicit[1].Timestamp.Equal(want) {
		t.Errorf("explicit @timestamp: got %v, want %v", explicit[1].Timestamp, want)
	}
}
