package httpin

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/trailwatch/trailwatch/ingest"
)

// errAckTimeout is the cause of an emit context that ran out of ack_timeout.
var errAckTimeout = errors.New("ack_timeout elapsed before Kafka acknowledged the records")

// handler serves the ingest routes and HealthPath, handing records to emit.
func (c *Collector) handler(emit ingest.Emit) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { c.serve(w, r, emit) })
}

func (c *Collector) serve(w http.ResponseWriter, r *http.Request, emit ingest.Emit) {
	if r.URL.Path == HealthPath {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			c.fail(w, http.StatusMethodNotAllowed, "use GET")
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
		return
	}
	source, ok := c.routes[r.URL.Path]
	if !ok {
		c.fail(w, http.StatusNotFound, "no route for this path")
		return
	}
	c.requests.Add(1)
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		w.Header().Set("Allow", "POST, PUT")
		c.fail(w, http.StatusMethodNotAllowed, "use POST or PUT")
		return
	}
	if !c.authorize(w, r) {
		return
	}
	ct := r.Header.Get("Content-Type")
	if ct != "" {
		// Refuse an unknown media type before reading its body.
		if _, ok := formatOf(ct, nil); !ok {
			c.unsupported.Add(1)
			c.fail(w, http.StatusUnsupportedMediaType,
				"Content-Type must be application/x-ndjson, application/json or text/plain")
			return
		}
	}
	// The in-flight limit bounds memory (each request holds its body) and
	// the emits waiting on Kafka. Over it, 429 at once: waiting here would
	// only hold the shipper's connection while Kafka is the bottleneck.
	select {
	case c.sem <- struct{}{}:
		defer func() { <-c.sem }()
	default:
		c.throttle(w, "too many requests in flight")
		return
	}
	observed := time.Now().UTC()
	body, status, err := c.readBody(w, r)
	if err != nil {
		switch status {
		case http.StatusRequestEntityTooLarge:
			c.tooLarge.Add(1)
		case http.StatusUnsupportedMediaType:
			c.unsupported.Add(1)
		default:
			c.badRequest.Add(1)
		}
		c.log.Debug("request refused", "path", r.URL.Path, "remote", r.RemoteAddr, "status", status, "err", err)
		c.fail(w, status, err.Error())
		return
	}
	f, _ := formatOf(ct, body)
	sp := splitter{maxDepth: c.cfg.MaxDepth, maxRecords: c.cfg.MaxRecords}
	parts, err := sp.split(nil, f, body)
	if err != nil {
		status := http.StatusBadRequest
		if de, ok := errors.AsType[*decodeError](err); ok && de.TooMany {
			status = http.StatusRequestEntityTooLarge
			c.tooLarge.Add(1)
		} else {
			c.badRequest.Add(1)
		}
		c.log.Debug("request refused", "path", r.URL.Path, "remote", r.RemoteAddr, "format", f.String(), "err", err)
		c.fail(w, status, fmt.Sprintf("%s body: %v", f, err))
		return
	}
	if len(parts) == 0 {
		c.accepted.Add(1)
		c.ok(w, 0)
		return
	}
	recs := c.buildRecords(parts, body, source, r, observed)

	// Answer 200 only after emit returned nil: that is the shipper's ack.
	ctx, cancel := context.WithTimeoutCause(r.Context(), c.cfg.AckTimeout, errAckTimeout)
	err = emit(ctx, recs)
	cause := context.Cause(ctx)
	cancel()
	if err != nil {
		// Some of the records may be stored already; the shipper resends
		// them all and their ids dedupe them downstream.
		if errors.Is(cause, errAckTimeout) {
			c.log.Debug("ack timeout", "path", r.URL.Path, "records", len(recs), "err", err)
			c.throttle(w, "Kafka is backed up, retry later")
			return
		}
		c.emitErrors.Add(1)
		c.log.Warn("emit failed", "path", r.URL.Path, "records", len(recs), "err", err)
		c.unavailable(w, "records not stored, retry later")
		return
	}
	var n, trunc uint64
	for i := range recs {
		n += uint64(len(recs[i].Data))
		if recs[i].Truncated {
			trunc++
		}
	}
	c.records.Add(uint64(len(recs)))
	c.bytes.Add(n)
	c.truncated.Add(trunc)
	c.accepted.Add(1)
	c.ok(w, len(recs))
}

// buildRecords builds the request's records. Stream hashes the decompressed body,
// Offset is the record's index in it: an identical retry (compressed or
// not, on any connection) yields identical ids.
func (c *Collector) buildRecords(parts [][]byte, body []byte, source string, r *http.Request, observed time.Time) []ingest.Record {
	sum := sha256.Sum256(body)
	stream := "http" + r.URL.Path + "/" + hex.EncodeToString(sum[:16])
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	if strings.Contains(ip, ":") {
		ip = "[" + ip + "]"
	}
	origin := ip + r.URL.Path
	recs := make([]ingest.Record, len(parts))
	for i, p := range parts {
		rec := &recs[i]
		if len(p) > c.cfg.MaxRecordBytes {
			// Accepting the request keeps the shipper going; the cut
			// record is dead-lettered by the normalize stage.
			p = p[:c.cfg.MaxRecordBytes]
			rec.Truncated = true
			c.log.Warn("record longer than max_record_bytes, emitted truncated",
				"path", r.URL.Path, "remote", r.RemoteAddr, "index", i, "max_record_bytes", c.cfg.MaxRecordBytes)
		}
		rec.Data = p
		rec.Source = source
		rec.Collector = c.cfg.Name
		rec.Host = c.cfg.Host
		rec.Origin = origin
		rec.Stream = stream
		rec.Offset = int64(i)
		rec.Observed = observed
	}
	return recs
}

// readBody reads the whole body, decompressing gzip, within max_body_bytes.
// On error it returns the status to answer.
func (c *Collector) readBody(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	limit := c.cfg.MaxBodyBytes
	tooLarge := fmt.Errorf("body exceeds max_body_bytes (%d bytes)", limit)
	if r.ContentLength > limit {
		return nil, http.StatusRequestEntityTooLarge, tooLarge
	}
	var rd io.Reader = http.MaxBytesReader(w, r.Body, limit)
	sizeHint := r.ContentLength
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		gz, err := gzip.NewReader(rd)
		if err != nil {
			return nil, readStatus(err), readErr("gzip", err, tooLarge)
		}
		defer func() { _ = gz.Close() }()
		rd = gz
		sizeHint = -1
	default:
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("Content-Encoding %q not supported (use gzip or none)", enc)
	}
	var buf bytes.Buffer
	if sizeHint >= 0 {
		buf.Grow(int(sizeHint) + bytes.MinRead)
	}
	// One byte past the limit tells "exactly the limit" from "over it"
	// for the decompressed stream, which MaxBytesReader does not bound.
	_, err := buf.ReadFrom(io.LimitReader(rd, limit+1))
	if err != nil {
		return nil, readStatus(err), readErr("reading body", err, tooLarge)
	}
	if int64(buf.Len()) > limit {
		return nil, http.StatusRequestEntityTooLarge, tooLarge
	}
	return buf.Bytes(), 0, nil
}

func readStatus(err error) int {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

func readErr(what string, err, tooLarge error) error {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return tooLarge
	}
	return fmt.Errorf("%s: %w", what, err)
}

// authorize checks the bearer token and answers 401 itself when it fails.
// Every configured token is compared, in constant time, against the SHA-256
// of the presented one, so neither the match position nor token lengths
// leak through timing.
func (c *Collector) authorize(w http.ResponseWriter, r *http.Request) bool {
	if len(c.tokens) == 0 {
		return true
	}
	const realm = `Bearer realm="trailwatch"`
	h := r.Header.Get("Authorization")
	scheme, tok, found := strings.Cut(h, " ")
	tok = strings.TrimSpace(tok)
	if !found || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		c.unauthorized.Add(1)
		w.Header().Set("WWW-Authenticate", realm)
		c.fail(w, http.StatusUnauthorized, "bearer token required")
		return false
	}
	sum := sha256.Sum256([]byte(tok))
	match := 0
	for i := range c.tokens {
		match |= subtle.ConstantTimeCompare(sum[:], c.tokens[i][:])
	}
	if match != 1 {
		c.unauthorized.Add(1)
		w.Header().Set("WWW-Authenticate", realm+`, error="invalid_token"`)
		c.fail(w, http.StatusUnauthorized, "invalid bearer token")
		c.log.Debug("invalid bearer token", "path", r.URL.Path, "remote", r.RemoteAddr)
		return false
	}
	return true
}

// throttle answers 429 with Retry-After.
func (c *Collector) throttle(w http.ResponseWriter, msg string) {
	c.throttled.Add(1)
	w.Header().Set("Retry-After", c.retryAfter())
	c.fail(w, http.StatusTooManyRequests, msg)
}

// unavailable answers 503 with Retry-After.
func (c *Collector) unavailable(w http.ResponseWriter, msg string) {
	w.Header().Set("Retry-After", c.retryAfter())
	c.fail(w, http.StatusServiceUnavailable, msg)
}

func (c *Collector) retryAfter() string {
	secs := (c.cfg.RetryAfter + time.Second - 1) / time.Second
	return strconv.FormatInt(int64(max(secs, 1)), 10)
}

func (c *Collector) ok(w http.ResponseWriter, n int) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	var b [32]byte
	out := append(b[:0], `{"accepted":`...)
	out = strconv.AppendInt(out, int64(n), 10)
	out = append(out, "}\n"...)
	_, _ = w.Write(out)
}

// fail answers status with {"error": msg}.
func (c *Collector) fail(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
