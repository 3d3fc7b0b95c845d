package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDocsExamplesUseRealKeys loads every YAML example in the docs through
// the real config loader: a key the docs show must be a key trailwatch
// accepts, so the docs cannot drift from the code.
func TestDocsExamplesUseRealKeys(t *testing.T) {
	block := regexp.MustCompile("(?s)```yaml\n(.*?)```")
	docs, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	examples, err := filepath.Glob("../../docs/examples/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct{ name, body string }
	for _, d := range docs {
		b, err := os.ReadFile(d)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range block.FindAllStringSubmatch(string(b), -1) {
			// Only whole configuration fragments: rule files and other
			// YAML in the docs start with other keys.
			if !regexp.MustCompile(`(?m)^(collect|kafka|index|notify|detect|normalize|http|log|stages|data_dir):`).MatchString(m[1]) {
				continue
			}
			cases = append(cases, struct{ name, body string }{filepath.Base(d) + "#" + string(rune('a'+i)), m[1]})
		}
	}
	for _, e := range examples {
		b, err := os.ReadFile(e)
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, struct{ name, body string }{filepath.Base(e), string(b)})
	}
	if len(cases) < 3 {
		t.Fatalf("found only %d configuration examples in docs/", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(p, []byte(c.body), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := loadConfig(p, []string{}, nil)
			if err != nil && (strings.Contains(err.Error(), "unknown key") || strings.Contains(err.Error(), "config file")) {
				t.Errorf("example does not load: %v", err)
			}
		})
	}
}
