//go:build soak

package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// search is a small client of the real OpenSearch node's REST API: the
// verifier reads the index the way a user would, with no trailwatch code
// in between.
type search struct{ base string }

func (s search) do(ctx context.Context, method, path, ctype string, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

func (s search) refresh(ctx context.Context, index string) {
	_, _, _ = s.do(ctx, http.MethodPost, "/"+index+"/_refresh?ignore_unavailable=true", "", nil)
}

// count returns the documents in index, or -1 when the node does not answer.
func (s search) count(ctx context.Context, index string) int {
	code, body, err := s.do(ctx, http.MethodGet, "/"+index+"/_count?ignore_unavailable=true", "", nil)
	if err != nil || code != http.StatusOK {
		return -1
	}
	var out struct {
		Count int `json:"count"`
	}
	if json.Unmarshal(body, &out) != nil {
		return -1
	}
	return out.Count
}

// scan calls fn with every document of index (id and source), paging with
// search_after on _doc order inside a point-in-time-free scroll.
func (s search) scan(ctx context.Context, index string, fn func(id string, src json.RawMessage)) error {
	s.refresh(ctx, index)
	code, body, err := s.do(ctx, http.MethodPost, "/"+index+"/_search?scroll=2m&ignore_unavailable=true", "application/json",
		[]byte(`{"size":5000,"sort":["_doc"],"query":{"match_all":{}}}`))
	for {
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("search %s: %d %s", index, code, truncate(string(body), 300))
		}
		var page struct {
			ScrollID string `json:"_scroll_id"`
			Hits     struct {
				Hits []struct {
					ID     string          `json:"_id"`
					Source json.RawMessage `json:"_source"`
				} `json:"hits"`
			} `json:"hits"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return err
		}
		if len(page.Hits.Hits) == 0 {
			if page.ScrollID != "" {
				_, _, _ = s.do(ctx, http.MethodDelete, "/_search/scroll", "application/json", []byte(`{"scroll_id":"`+page.ScrollID+`"}`))
			}
			return nil
		}
		for _, h := range page.Hits.Hits {
			fn(h.ID, h.Source)
		}
		code, body, err = s.do(ctx, http.MethodPost, "/_search/scroll", "application/json",
			[]byte(`{"scroll":"2m","scroll_id":"`+page.ScrollID+`"}`))
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// bulkBody encodes docs as one _bulk request of create actions into index.
func bulkBody(index string, ids []string, docs []json.RawMessage) []byte {
	var b bytes.Buffer
	for i, d := range docs {
		fmt.Fprintf(&b, `{"create":{"_index":%q,"_id":%q}}`+"\n", index, ids[i])
		b.Write(bytes.TrimSpace(d))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// bulk sends one pre-encoded _bulk body and reports item errors.
func (s search) bulk(ctx context.Context, body []byte) error {
	code, out, err := s.do(ctx, http.MethodPost, "/_bulk", "application/x-ndjson", body)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("bulk: %d %s", code, truncate(string(out), 300))
	}
	if bytes.Contains(out[:min(len(out), 64)], []byte(`"errors":true`)) {
		return fmt.Errorf("bulk: item errors: %s", truncate(string(out), 300))
	}
	return nil
}
