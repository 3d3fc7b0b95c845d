package normalize

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestAppendJSONStringDecodesToTheInput(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{name: "plain id", in: "18470ce8c5e073f0315b678555045d01", want: "18470ce8c5e073f0315b678555045d01"},
		{name: "quote and backslash", in: `a"b\c`, want: `a"b\c`},
		{name: "control characters", in: "a\nb\tc\rd\x00e\x1f", want: "a\nb\tc\rd\x00e\x1f"},
		{name: "unicode", in: "café-日本-😀", want: "café-日本-😀"},
		{name: "invalid UTF-8 becomes U+FFFD", in: "a\xffb\xc3", want: "a\ufffdb\ufffd"},
		{name: "empty", in: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := AppendJSONString([]byte("prefix:"), tt.in)
			if !bytes.HasPrefix(out, []byte("prefix:")) {
				t.Fatalf("dst lost: %q", out)
			}
			out = out[len("prefix:"):]
			if bytes.ContainsAny(out, "\n\r") {
				t.Errorf("%q holds a raw line break: it would cut the bulk framing", out)
			}
			var got string
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("%q is not a JSON string: %v", out, err)
			}
			if got != tt.want {
				t.Errorf("decoded %q, want %q", got, tt.want)
			}
		})
	}
}
