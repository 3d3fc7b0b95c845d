package iplist

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/trailwatch/trailwatch/internal/config"
)

// feed downloads one list URL. Only the list's background refresher calls
// fetch, one call at a time, so its conditional-request state needs no
// lock.
type feed struct {
	url      string
	redacted string // the URL without credentials or query, for errors and logs
	header   http.Header
	client   *http.Client
	maxBytes int64
	timeout  time.Duration

	etag, lastModified               string // from the last response that parsed
	pendingETag, pendingLastModified string // from the last response
}

// errNotModified is a 304: the feed did not change since the last fetch.
var errNotModified = errors.New("not modified")

func newFeed(l List) (*feed, error) {
	token, err := config.ResolveSecret("token", l.Token, l.TokenFile)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("User-Agent", "trailwatch-iplist")
	for k, v := range l.Headers {
		h.Set(k, v.Value())
	}
	if token.IsSet() {
		h.Set("Authorization", "Bearer "+token.Value())
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if l.CAFile != "" {
		pool, err := config.LoadCAPool(l.CAFile)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &feed{
		url: l.URL, redacted: redactURL(l.URL), header: h,
		client:   &http.Client{Transport: tr},
		maxBytes: l.MaxBytes, timeout: l.Timeout,
	}, nil
}

// redactURL drops user info and the query, where feed URLs carry keys.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "<unparseable url>"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// fetch downloads the feed within its timeout and size limit. It returns
// errNotModified on a 304. Errors name the redacted URL only.
func (f *feed) fetch(ctx context.Context) ([]byte, error) {
	// One request, one budget: a hung feed server must not hold the
	// refresher past its next tick or Close.
	ctx, cancel := context.WithTimeoutCause(ctx, f.timeout, fmt.Errorf("fetch %s: timed out after %s", f.redacted, f.timeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: bad request", f.redacted)
	}
	req.Header = f.header.Clone()
	if f.etag != "" {
		req.Header.Set("If-None-Match", f.etag)
	}
	if f.lastModified != "" {
		req.Header.Set("If-Modified-Since", f.lastModified)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
			return nil, cause
		}
		// *url.Error repeats the full URL; keep only what it wraps.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("fetch %s: %w", f.redacted, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified:
		return nil, errNotModified
	case resp.StatusCode != http.StatusOK:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
		return nil, fmt.Errorf("fetch %s: HTTP %d", f.redacted, resp.StatusCode)
	case resp.ContentLength > f.maxBytes:
		return nil, fmt.Errorf("fetch %s: %d bytes exceeds max_bytes %d", f.redacted, resp.ContentLength, f.maxBytes)
	}
	// Read one byte past the limit to tell "exactly max" from "more".
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.maxBytes+1))
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
			return nil, cause
		}
		return nil, fmt.Errorf("fetch %s: reading body: %w", f.redacted, err)
	}
	if int64(len(body)) > f.maxBytes {
		return nil, fmt.Errorf("fetch %s: body exceeds max_bytes %d", f.redacted, f.maxBytes)
	}
	f.pendingETag, f.pendingLastModified = resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	return body, nil
}

// commit remembers the validators of the last fetch once its body parsed:
// a body that failed to parse is fetched again in full next time.
func (f *feed) commit() { f.etag, f.lastModified = f.pendingETag, f.pendingLastModified }

// close releases idle connections.
func (f *feed) close() { f.client.CloseIdleConnections() }
