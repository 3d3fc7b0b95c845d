// Package rules holds trailwatch's shipped detection rules as YAML files;
// this test loads them all and runs every rule's inline test cases.
package rules

import (
	"testing"

	"github.com/trailwatch/trailwatch/detect"
	"github.com/trailwatch/trailwatch/detect/ruletest"
)

func TestRules(t *testing.T) {
	rs, err := detect.LoadDir(".")
	if err != nil {
		t.Fatalf("load rules:\n%v", err)
	}
	for _, r := range rs.Rules() {
		t.Run(r.ID, func(t *testing.T) {
			if len(r.Tests) == 0 {
				t.Errorf("%s: rule has no tests", r.Pos())
			}
			if r.Description == "" || len(r.References) == 0 || len(r.Tags) == 0 {
				t.Errorf("%s: every shipped rule needs a description, references and tags", r.Pos())
			}
		})
	}
	for _, res := range ruletest.Run(rs) {
		t.Run(res.RuleID+"/"+res.Test, func(t *testing.T) {
			if !res.Passed() {
				t.Errorf("%s", res)
			}
		})
	}
}
