package outputs

import (
	"strings"
	"testing"
)

func TestBatchError(t *testing.T) {
	tests := []struct {
		name      string
		items     []ItemError
		retryable []int
		permanent int
		msg       string
	}{
		{name: "empty", msg: "no failures"},
		{
			name:      "mixed",
			items:     []ItemError{{Index: 1, Retryable: true, Reason: "429"}, {Index: 3, Reason: "400 mapper_parsing_exception"}},
			retryable: []int{1}, permanent: 1,
			msg: "2 documents failed (1 retryable): first [1]: 429",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &BatchError{Items: tt.items}
			if got := e.Retryable(); len(got) != len(tt.retryable) || (len(got) > 0 && got[0] != tt.retryable[0]) {
				t.Errorf("Retryable = %v, want %v", got, tt.retryable)
			}
			if got := e.Permanent(); len(got) != tt.permanent {
				t.Errorf("Permanent = %v, want %d", got, tt.permanent)
			}
			if !strings.Contains(e.Error(), tt.msg) {
				t.Errorf("Error = %q, want %q", e.Error(), tt.msg)
			}
		})
	}
}
