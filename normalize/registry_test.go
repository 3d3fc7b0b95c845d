package normalize_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/trailwatch/trailwatch/normalize"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		source  string
		wantErr string
	}{
		{name: "nginx", source: "nginx"},
		{name: "unknown", source: "gopher", wantErr: `normalize: unknown source "gopher" (known: `},
		{name: "empty", source: "", wantErr: `normalize: unknown source ""`},
		{name: "case matters", source: "NGINX", wantErr: "unknown source"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := normalize.New(tt.source)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New(%q) error = %v, want it to contain %q", tt.source, err, tt.wantErr)
				}
				if n != nil {
					t.Errorf("New(%q) returned a normalizer with an error", tt.source)
				}
				return
			}
			if err != nil || n == nil {
				t.Fatalf("New(%q) = %v, %v", tt.source, n, err)
			}
		})
	}
}

func TestSources(t *testing.T) {
	got := normalize.Sources()
	if !slices.IsSorted(got) {
		t.Errorf("Sources() = %v, not sorted", got)
	}
	for _, s := range got {
		_, err := normalize.New(s)
		if s == "regex" {
			// The one type that has no default: it needs a pattern.
			if err == nil || !strings.Contains(err.Error(), "pattern: required") {
				t.Errorf("New(regex) without a pattern = %v, want pattern: required", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Sources() lists %q but New fails: %v", s, err)
		}
	}
}
