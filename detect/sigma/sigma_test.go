package sigma

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/trailwatch/trailwatch/detect"
	"github.com/trailwatch/trailwatch/detect/ruletest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func sigmaFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no Sigma test files: %v", err)
	}
	return files
}

// golden renders a conversion result: the rules as YAML documents, then
// the problems as comments.
func golden(out []Converted, probs []Problem) []byte {
	var b bytes.Buffer
	for i, c := range out {
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(c.YAML)
	}
	for _, p := range probs {
		b.WriteString("# problem: " + p.String() + "\n")
	}
	return b.Bytes()
}

func TestGolden(t *testing.T) {
	for _, file := range sigmaFiles(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			out, probs := Convert(file, data)
			for _, c := range out {
				if _, err := detect.Parse(c.ID+".yaml", c.YAML); err != nil {
					t.Errorf("%s does not load:\n%v\n%s", c.ID, err, c.YAML)
				}
			}
			got := golden(out, probs)
			path := strings.TrimSuffix(file, ".yml") + ".golden"
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("conversion differs from %s (go test -update rewrites it):\n got:\n%s\nwant:\n%s", path, got, want)
			}
		})
	}
}

// TestSamplesFire appends each converted rule's sample events (from
// testdata/*.samples.yaml) as trailwatch rule tests, loads the rule and
// runs every case through a detect.Detector. Every converted rule in
// testdata must have samples.
func TestSamplesFire(t *testing.T) {
	out, probs := ConvertFiles("testdata")
	if len(out) == 0 {
		t.Fatalf("nothing converted; problems: %v", probs)
	}
	samples := map[string]*yaml.Node{}
	sampleFiles, _ := filepath.Glob("testdata/*.samples.yaml")
	for _, f := range sampleFiles {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		m := doc.Content[0]
		for i := 0; i+1 < len(m.Content); i += 2 {
			samples[m.Content[i].Value] = m.Content[i+1]
		}
	}
	dir := t.TempDir()
	for _, c := range out {
		t.Run(c.ID, func(t *testing.T) {
			tests, ok := samples[c.ID]
			if !ok {
				t.Fatalf("no samples for %s (%s) in testdata/*.samples.yaml", c.ID, c.Title)
			}
			var rule yaml.Node
			if err := yaml.Unmarshal(c.YAML, &rule); err != nil {
				t.Fatal(err)
			}
			root := rule.Content[0]
			root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "tests"}, tests)
			data, err := yaml.Marshal(&rule)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, c.ID+".yaml")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			set, err := detect.LoadFiles(path)
			if err != nil {
				t.Fatalf("converted rule with samples does not load: %v\n%s", err, data)
			}
			r := set.Get(c.ID)
			if len(r.Tests) < 2 {
				t.Fatalf("want a firing and a quiet sample case, got %d cases", len(r.Tests))
			}
			for _, tc := range r.Tests {
				t.Run(tc.Name, func(t *testing.T) {
					d, err := detect.New(set, detect.DefaultConfig(), nil)
					if err != nil {
						t.Fatal(err)
					}
					alerts, err := d.Observe(t.Context(), ruletest.Events(tc))
					if err != nil {
						t.Fatal(err)
					}
					if errs := d.DrainRuleErrors(); len(errs) > 0 {
						t.Fatalf("rule errors: %v", errs)
					}
					if len(alerts) != len(tc.Expect) {
						t.Fatalf("got %d alerts, want %d\n%s", len(alerts), len(tc.Expect), r.Where)
					}
					for i, x := range tc.Expect {
						if !x.Match(alerts[i]) {
							t.Errorf("alert %d: count=%d group=%v does not match %+v", i, alerts[i].Trailwatch.Count, alerts[i].Trailwatch.GroupKey, x)
						}
					}
				})
			}
		})
	}
}

// TestConvertFiles converts the testdata directory as one set: base rules
// consumed by a correlation are not emitted, and correlations may refer to
// rules in other files.
func TestConvertFiles(t *testing.T) {
	out, probs := ConvertFiles("testdata", filepath.Join(t.TempDir(), "missing"))
	var ids []string
	for _, c := range out {
		ids = append(ids, c.SigmaID)
	}
	for _, consumed := range []string{"17ffb7f5-ed2b-4d5d-9416-3ed97341adc5", "ea8cccde-5a18-49ee-b22d-f48e3a5adffd"} {
		if slices.Contains(ids, consumed) {
			t.Errorf("base rule %s of a correlation was emitted on its own", consumed)
		}
	}
	if len(out) != 8 || !slices.Contains(ids, "f2dd6d2d-ea14-458d-9a0b-6c35e656f15f") {
		t.Errorf("got %d rules, want 8 with the temporal correlation: %v", len(out), ids)
	}
	var reasons []string
	for _, p := range probs {
		reasons = append(reasons, p.Reason)
	}
	all := strings.Join(reasons, "\n")
	for _, want := range []string{"aggregations are not supported", "missing: no such file"} {
		if !strings.Contains(all, want) {
			t.Errorf("problems lack %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "is not among") {
		t.Errorf("cross-file reference not resolved:\n%s", all)
	}
}
