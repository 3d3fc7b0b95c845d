package sigma

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/trailwatch/trailwatch/detect"
)

// FuzzConvert checks that no input panics and that every rule emitted
// loads with detect.Parse (the emitted expr always compiles).
func FuzzConvert(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yml")
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(webRule("    s:\n        cs-uri-query|contains: \"\\\"\\\\\\u00e9\\t*?\"\n    condition: not (s or 1 of them)\n")))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, _ := Convert("fuzz.yml", data)
		for _, c := range out {
			if _, err := detect.Parse("fuzz.yaml", c.YAML); err != nil {
				t.Fatalf("emitted rule does not load: %v\n%s", err, c.YAML)
			}
		}
	})
}
