package elasticsearch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esutil"

	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/outputs"
)

// bulkURL is the bulk endpoint (the transport fills in the node) with a
// filter_path that trims the response to what classify reads: the top-level
// errors flag and each item's status and error. A created item then answers
// {"create":{"status":201}} instead of ~150 bytes of _index, _id, _version,
// _shards and _seq_no nobody reads.
const bulkURL = "http:///_bulk?filter_path=errors,items.*.status,items.*.error"

// bufPool recycles request bodies and response buffers: a bulk request of
// 500 ~1.2 KB documents is ~650 KB, allocated and zeroed on every Write
// otherwise.
var bufPool = sync.Pool{New: func() any { return new([]byte) }}

// pooledBody is a request body from bufPool, returned to it when its last
// holder lets go: the sender, and every reader the transport was given
// (net/http may still be writing a body after the response arrived, so
// the buffer must not be reused before the transport closes it).
type pooledBody struct {
	buf  *[]byte
	refs atomic.Int32
}

// newPooledBody takes a buffer of at least capacity size, held once.
func newPooledBody(size int) *pooledBody {
	b := &pooledBody{buf: bufPool.Get().(*[]byte)}
	if cap(*b.buf) < size {
		*b.buf = make([]byte, 0, size)
	}
	b.refs.Store(1)
	return b
}

// release lets go of one hold.
func (b *pooledBody) release() {
	if b.refs.Add(-1) == 0 {
		bufPool.Put(b.buf)
	}
}

// reader returns a new hold on the body as a reader that releases it on
// Close.
func (b *pooledBody) reader() io.ReadCloser {
	b.refs.Add(1)
	return &bodyReader{r: bytes.NewReader(*b.buf), body: b}
}

// bodyReader is one hold on a pooled body. HTTP/2 may Close it from
// another goroutine while a Read is copying: mu makes Close wait for that
// Read, and Reads after Close find nothing, so a recycled buffer is never
// read.
type bodyReader struct {
	mu     sync.Mutex
	r      *bytes.Reader
	body   *pooledBody
	closed bool
}

func (r *bodyReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, io.EOF
	}
	return r.r.Read(p)
}

func (r *bodyReader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.closed = true
		r.body.release()
	}
	return nil
}

// errEmptyBody is the permanent failure of a document without a body: a
// blank source line would make the node refuse the whole bulk request.
var errEmptyBody = errors.New("document body is empty")

// MaxIDBytes is the longest _id Elasticsearch and OpenSearch accept.
const MaxIDBytes = 512

// appendItem appends the bulk lines of d: the create action with its _id
// and index, then the body. A body holding a raw newline (pretty-printed
// JSON) would cut the bulk framing, so it is compacted; one that does not
// compact is not JSON and fails here, permanently.
func (ix *Indexer) appendItem(dst []byte, d outputs.Document) ([]byte, error) {
	if d.ID == "" {
		return dst, errors.New("document has no id: refusing to index without a deterministic _id")
	}
	if len(d.ID) > MaxIDBytes {
		// The node refuses the whole _bulk request for one such id: left
		// in, it would stall the batch forever.
		return dst, fmt.Errorf("document id is %d bytes, over the %d Elasticsearch accepts", len(d.ID), MaxIDBytes)
	}
	if len(bytes.TrimSpace(d.Body)) == 0 {
		return dst, errEmptyBody
	}
	start := len(dst)
	dst = append(dst, `{"create":{"_id":`...)
	dst = normalize.AppendJSONString(dst, d.ID)
	dst = append(dst, `,"_index":"`...)
	dst, err := ix.appendIndex(dst, d)
	if err != nil {
		return dst[:start], err
	}
	dst = append(dst, "\"}}\n"...)
	if bytes.IndexByte(d.Body, '\n') < 0 {
		dst = append(dst, d.Body...)
	} else {
		buf := bytes.NewBuffer(dst)
		if err := json.Compact(buf, d.Body); err != nil {
			return dst[:start], fmt.Errorf("document is not valid JSON: %w", err)
		}
		dst = buf.Bytes()
	}
	return append(dst, '\n'), nil
}

// appendIndex appends the name of the index d goes to: the kind's index or
// data stream, with "-YYYY.MM.DD" of @timestamp (UTC) in daily mode.
func (ix *Indexer) appendIndex(dst []byte, d outputs.Document) ([]byte, error) {
	switch d.Kind {
	case outputs.KindEvents:
		dst = append(dst, ix.cfg.EventsIndex...)
	case outputs.KindAlerts:
		dst = append(dst, ix.cfg.AlertsIndex...)
	default:
		return dst, fmt.Errorf("unknown document kind %q", d.Kind)
	}
	if ix.cfg.Mode != ModeDaily {
		// single: the index; data_stream: the stream, which routes a
		// create to its write index.
		return dst, nil
	}
	ts := d.Timestamp
	if ts.IsZero() {
		var err error
		if ts, err = bodyTimestamp(d.Body); err != nil {
			return dst, err
		}
	}
	y, m, day := ts.UTC().Date()
	if y < 0 || y > 9999 {
		return append(dst, ts.UTC().Format("-2006.01.02")...), nil
	}
	return append(dst, '-',
		byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '.',
		byte('0'+m/10), byte('0'+m%10), '.',
		byte('0'+day/10), byte('0'+day%10)), nil
}

// bulkAllOK reports whether resp, a bulk response to n actions, says every
// one succeeded: the top-level "errors" is false (the server sets it when
// any item failed, a 409 included) and there are n item statuses. It reads
// only the first keys; anything unexpected returns false and the caller
// decodes the response item by item.
func bulkAllOK(resp []byte, n int) bool {
	r := skipSpace(resp)
	if len(r) == 0 || r[0] != '{' {
		return false
	}
	r = r[1:]
	for {
		r = skipSpace(r)
		var key string
		switch {
		case bytes.HasPrefix(r, []byte(`"errors"`)):
			key = "errors"
		case bytes.HasPrefix(r, []byte(`"took"`)):
			key = "took"
		default:
			return false
		}
		r = skipSpace(r[len(key)+2:])
		if len(r) == 0 || r[0] != ':' {
			return false
		}
		r = skipSpace(r[1:])
		if key == "errors" {
			return bytes.HasPrefix(r, []byte("false")) && bytes.Count(resp, []byte(`"status":`)) == n
		}
		digits := 0
		for digits < len(r) && '0' <= r[digits] && r[digits] <= '9' {
			digits++
		}
		r = skipSpace(r[digits:])
		if digits == 0 || len(r) == 0 || r[0] != ',' {
			return false
		}
		r = r[1:]
	}
}

func skipSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}

// bulkItemErrors decodes a bulk response item by item and returns the
// failures among sent (the docs indexes of the request's actions, in
// order), classified. An item the response lacks is retryable: nothing is
// reported stored without the server saying so.
func bulkItemErrors(resp []byte, sent []int) []outputs.ItemError {
	var r struct {
		Items []map[string]esutil.BulkIndexerResponseItem `json:"items"`
	}
	if err := json.Unmarshal(resp, &r); err != nil {
		return allRetryable(sent, truncate("bulk response: "+err.Error()))
	}
	var failed []outputs.ItemError
	for k, i := range sent {
		if k >= len(r.Items) {
			failed = append(failed, outputs.ItemError{Index: i, Retryable: true, Reason: "no response for this document from the bulk request"})
			continue
		}
		var item esutil.BulkIndexerResponseItem
		for _, v := range r.Items[k] {
			item = v
		}
		if ok, retry, reason := classify(item, nil); !ok {
			failed = append(failed, outputs.ItemError{Index: i, Retryable: retry, Reason: reason})
		}
	}
	return failed
}

// allRetryable marks every document of a failed request retryable.
func allRetryable(sent []int, reason string) []outputs.ItemError {
	out := make([]outputs.ItemError, len(sent))
	for k, i := range sent {
		out[k] = outputs.ItemError{Index: i, Retryable: true, Reason: reason}
	}
	return out
}

// readAll appends r's content to dst.
func readAll(dst []byte, r io.Reader) ([]byte, error) {
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}

// requestTimeoutCause is the cause of a bulk request's context ending at
// request_timeout.
func requestTimeoutCause(d time.Duration) error {
	return fmt.Errorf("elasticsearch: bulk request exceeded request_timeout %s", d)
}
