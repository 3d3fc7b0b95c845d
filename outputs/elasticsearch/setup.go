package elasticsearch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"strings"
)

// ErrLifecycleUnavailable means the server has no lifecycle API: an
// OpenSearch node without the index-management (ISM) plugin. Install the
// plugin, or set both retention_days to 0 (and use mode daily or single).
var ErrLifecycleUnavailable = errors.New("elasticsearch: the server has no lifecycle API (OpenSearch needs the index-management plugin for ISM)")

// Actions a ReportItem records.
const (
	ActionCreated   = "created"
	ActionUpdated   = "updated"
	ActionUnchanged = "unchanged"
)

// Report lists what Setup (or EnsureIndices) did, one item per resource.
type Report struct {
	Items []ReportItem
}

// ReportItem is one resource and what happened to it.
type ReportItem struct {
	// Kind is "ilm policy", "ism policy", "component template",
	// "index template", "data stream" or "index".
	Kind string
	// Name is the resource's name on the server.
	Name string
	// Action is created, updated or unchanged.
	Action string
}

// Changed reports whether any resource was created or updated.
func (r Report) Changed() bool {
	for _, it := range r.Items {
		if it.Action != ActionUnchanged {
			return true
		}
	}
	return false
}

// String renders one line per resource: action, kind, name.
func (r Report) String() string {
	var b strings.Builder
	for _, it := range r.Items {
		fmt.Fprintf(&b, "%-9s %-18s %s\n", it.Action, it.Kind, it.Name)
	}
	return b.String()
}

// Request is one admin request that Setup sends when nothing exists yet.
type Request struct {
	Method string
	Path   string
	Body   json.RawMessage
}

// metaKey is the _meta member holding a definition's hash: Setup compares
// it instead of the stored definition, which the server normalises
// (settings as strings, defaults added) so a literal comparison would
// always differ.
const metaKey = "trailwatch_hash"

// resource is one thing Setup installs.
type resource struct {
	kind string
	name string
	path string
	body map[string]any // with _meta (or the ISM description) carrying hash
	hash string
	// index is the index or data stream a template serves, for mapping
	// updates of an existing target.
	index   string
	mapping map[string]any
}

// resources lists, in install order, what Setup installs for both kinds:
// with lifecycle, the policies first, since templates name them.
func (ix *Indexer) resources(lifecycle bool) []resource {
	var out []resource
	c := ix.cfg
	for _, k := range []struct {
		index     string
		retention int
		mapping   map[string]any
	}{
		{c.EventsIndex, c.EventsRetentionDays, eventsMapping(c.Flavor)},
		{c.AlertsIndex, c.AlertsRetentionDays, alertsMapping(c.Flavor)},
	} {
		policy := c.needsPolicy(k.retention)
		if lifecycle && policy {
			if c.Flavor == FlavorOpenSearch {
				body := c.ismPolicy(k.index, k.retention)
				h := hashOf(body)
				p := body["policy"].(map[string]any)
				p["description"] = fmt.Sprintf("%s [%s %s]", p["description"], metaKey, h)
				out = append(out, resource{kind: "ism policy", name: policyName(k.index),
					path: "/_plugins/_ism/policies/" + policyName(k.index), body: body, hash: h})
			} else {
				body := c.ilmPolicy(k.retention)
				h := hashOf(body)
				body["policy"].(map[string]any)["_meta"] = meta(h)
				out = append(out, resource{kind: "ilm policy", name: policyName(k.index),
					path: "/_ilm/policy/" + policyName(k.index), body: body, hash: h})
			}
		}
		component := k.index + "-mappings"
		out = append(out, withHash(resource{kind: "component template", name: component,
			path: "/_component_template/" + component, index: k.index,
			body: map[string]any{"template": map[string]any{"mappings": k.mapping}}}))
		tmpl := map[string]any{
			"index_patterns": []string{k.index},
			// Above the built-in templates (logs-*-* at 100), which do not
			// match these names anyway.
			"priority":    200,
			"composed_of": []string{component},
		}
		switch c.Mode {
		case ModeDaily:
			tmpl["index_patterns"] = []string{k.index + "-*"}
		case ModeDataStream:
			tmpl["data_stream"] = map[string]any{}
		}
		if policy && c.Flavor == FlavorElasticsearch {
			tmpl["template"] = map[string]any{"settings": map[string]any{"index.lifecycle.name": policyName(k.index)}}
		}
		out = append(out, withHash(resource{kind: "index template", name: k.index,
			path: "/_index_template/" + k.index, body: tmpl, index: k.index, mapping: k.mapping}))
		switch c.Mode {
		case ModeSingle:
			out = append(out, resource{kind: "index", name: k.index, path: "/" + neturl.PathEscape(k.index)})
		case ModeDataStream:
			out = append(out, resource{kind: "data stream", name: k.index, path: "/_data_stream/" + neturl.PathEscape(k.index)})
		}
	}
	return out
}

func withHash(r resource) resource {
	r.hash = hashOf(r.body)
	r.body["_meta"] = meta(r.hash)
	return r
}

func meta(hash string) map[string]any {
	return map[string]any{"managed_by": "trailwatch", metaKey: hash}
}

// hashOf is a short digest of a definition. encoding/json sorts map keys,
// so equal definitions hash equal.
func hashOf(body map[string]any) string {
	b, err := json.Marshal(body)
	if err != nil {
		panic(fmt.Sprintf("elasticsearch: definition does not marshal: %v", err)) // static data: a bug
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// SetupRequests returns the requests Setup sends to a server that has none
// of the resources yet, in order, without contacting it: what
// `trailwatch setup elasticsearch --dry-run` prints.
func (ix *Indexer) SetupRequests() []Request {
	var out []Request
	for _, r := range ix.resources(true) {
		var body json.RawMessage
		if r.body != nil {
			body, _ = json.Marshal(r.body)
		}
		out = append(out, Request{Method: http.MethodPut, Path: r.path, Body: body})
	}
	return out
}

// Setup installs everything the indexer's configuration needs, in order:
// the lifecycle policies (ILM on Elasticsearch, ISM on OpenSearch), a
// component template with the ECS mapping and an index template per kind,
// and the indices (single) or data streams (data_stream). It is
// idempotent: a resource whose stored definition carries the current hash
// is left alone and reported unchanged; one that differs is replaced and
// reported updated, and when an index template changed, the new mapping is
// also put on the existing index or data stream (additions apply at once;
// a conflicting change fails with the server's reason). Setup stops at the
// first failure; the report lists what was done before it.
//
// An ISM policy update applies to indices created afterwards; indices
// already managed keep the policy version they started with (OpenSearch's
// change_policy API moves them).
func (ix *Indexer) Setup(ctx context.Context) (Report, error) {
	return ix.install(ctx, ix.resources(true))
}

// EnsureIndices installs what writing needs (templates, and the indices or
// data streams) but no lifecycle policy, with the same idempotence as
// Setup. The pipeline calls it at start-up; `trailwatch setup
// elasticsearch` runs Setup.
func (ix *Indexer) EnsureIndices(ctx context.Context) error {
	_, err := ix.install(ctx, ix.resources(false))
	return err
}

func (ix *Indexer) install(ctx context.Context, rs []resource) (Report, error) {
	var rep Report
	changed := map[string]bool{} // index name -> one of its templates changed
	for _, r := range rs {
		var (
			action string
			err    error
		)
		switch r.kind {
		case "ism policy":
			action, err = ix.ensureISM(ctx, r)
		case "index", "data stream":
			action, err = ix.ensureTarget(ctx, r, changed[r.name])
		default:
			action, err = ix.ensureDefinition(ctx, r)
			if r.index != "" && action != ActionUnchanged {
				changed[r.index] = true
			}
		}
		if err != nil {
			return rep, fmt.Errorf("elasticsearch: %s %s: %w", r.kind, r.name, err)
		}
		rep.Items = append(rep.Items, ReportItem{Kind: r.kind, Name: r.name, Action: action})
	}
	return rep, nil
}

// ensureDefinition installs an ILM policy, component or index template
// unless the stored one carries the same hash.
func (ix *Indexer) ensureDefinition(ctx context.Context, r resource) (string, error) {
	status, body, err := ix.do(ctx, http.MethodGet, r.path, nil)
	if err != nil {
		return "", err
	}
	action := ActionCreated
	switch {
	case status == http.StatusNotFound:
	case status == http.StatusOK:
		if storedHash(r.kind, r.name, body) == r.hash {
			return ActionUnchanged, nil
		}
		action = ActionUpdated
	default:
		return "", statusErr(status, body)
	}
	if err := ix.put(ctx, r.path, r.body); err != nil {
		return "", err
	}
	return action, nil
}

// storedHash digs the hash out of a GET answer for kind.
func storedHash(kind, name string, body []byte) string {
	var got struct {
		Component []struct {
			T struct {
				Meta map[string]any `json:"_meta"`
			} `json:"component_template"`
		} `json:"component_templates"`
		Index []struct {
			T struct {
				Meta map[string]any `json:"_meta"`
			} `json:"index_template"`
		} `json:"index_templates"`
	}
	var meta map[string]any
	switch kind {
	case "ilm policy":
		var ilm map[string]struct {
			Policy struct {
				Meta map[string]any `json:"_meta"`
			} `json:"policy"`
		}
		if json.Unmarshal(body, &ilm) == nil {
			meta = ilm[name].Policy.Meta
		}
	case "component template":
		if json.Unmarshal(body, &got) == nil && len(got.Component) == 1 {
			meta = got.Component[0].T.Meta
		}
	case "index template":
		if json.Unmarshal(body, &got) == nil && len(got.Index) == 1 {
			meta = got.Index[0].T.Meta
		}
	}
	h, _ := meta[metaKey].(string)
	return h
}

// ensureISM installs an ISM policy, updating it under optimistic
// concurrency (if_seq_no / if_primary_term) when its hash differs.
func (ix *Indexer) ensureISM(ctx context.Context, r resource) (string, error) {
	status, body, err := ix.do(ctx, http.MethodGet, r.path, nil)
	if err != nil {
		return "", err
	}
	path := r.path
	action := ActionCreated
	switch {
	case status == http.StatusNotFound:
	case status == http.StatusOK:
		var got struct {
			SeqNo       int64 `json:"_seq_no"`
			PrimaryTerm int64 `json:"_primary_term"`
			Policy      struct {
				Description string `json:"description"`
			} `json:"policy"`
		}
		if err := json.Unmarshal(body, &got); err != nil {
			return "", fmt.Errorf("read stored policy: %w", err)
		}
		if strings.Contains(got.Policy.Description, "["+metaKey+" "+r.hash+"]") {
			return ActionUnchanged, nil
		}
		path += fmt.Sprintf("?if_seq_no=%d&if_primary_term=%d", got.SeqNo, got.PrimaryTerm)
		action = ActionUpdated
	case noHandler(status, body):
		return "", ErrLifecycleUnavailable
	default:
		return "", statusErr(status, body)
	}
	if err := ix.put(ctx, path, r.body); err != nil {
		return "", err
	}
	return action, nil
}

// ensureTarget creates an index or data stream; an existing one is
// unchanged unless one of its templates changed, in which case the new mapping is
// put on it.
func (ix *Indexer) ensureTarget(ctx context.Context, r resource, templateChanged bool) (string, error) {
	status, body, err := ix.do(ctx, http.MethodPut, r.path, nil)
	if err != nil {
		return "", err
	}
	switch {
	case status < 300:
		return ActionCreated, nil
	case errorType(body) != "resource_already_exists_exception":
		return "", statusErr(status, body)
	case !templateChanged:
		return ActionUnchanged, nil
	}
	var mapping map[string]any
	for _, res := range ix.resources(false) {
		if res.kind == "index template" && res.index == r.name {
			mapping = res.mapping
		}
	}
	if err := ix.put(ctx, "/"+neturl.PathEscape(r.name)+"/_mapping", mapping); err != nil {
		return "", fmt.Errorf("update mapping: %w", err)
	}
	return ActionUpdated, nil
}

// put sends a PUT with a JSON body and requires a 2xx answer.
func (ix *Indexer) put(ctx context.Context, path string, body map[string]any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	status, res, err := ix.do(ctx, http.MethodPut, path, b)
	if err != nil {
		return err
	}
	if status >= 300 {
		if noHandler(status, res) {
			return ErrLifecycleUnavailable
		}
		return statusErr(status, res)
	}
	return nil
}

// do sends one admin request bounded by request_timeout and returns the
// status and (at most 1 MiB of) the body.
func (ix *Indexer) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, ix.cfg.RequestTimeout,
		fmt.Errorf("elasticsearch: admin request exceeded request_timeout %s", ix.cfg.RequestTimeout))
	defer cancel()
	u, err := neturl.Parse(path)
	if err != nil {
		return 0, nil, err
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := ix.client.Perform(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, u.Path, err)
	}
	defer func() { _ = res.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: read answer: %w", method, u.Path, err)
	}
	return res.StatusCode, b, nil
}

// errorType returns the error.type of an error answer, or "".
func errorType(body []byte) string {
	var e struct {
		Error struct {
			Type string `json:"type"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	return e.Error.Type
}

// noHandler recognises the answer of a server without the requested API
// ("no handler found for uri").
func noHandler(status int, body []byte) bool {
	return (status == http.StatusBadRequest || status == http.StatusNotFound || status == http.StatusMethodNotAllowed) &&
		bytes.Contains(body, []byte("no handler found"))
}

// statusError is an admin request the server answered with an error
// status; Retryable reads the status.
type statusError struct {
	status int
	msg    string
}

func (e *statusError) Error() string { return e.msg }

func statusErr(status int, body []byte) error {
	var e struct {
		Error struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Type != "" {
		return &statusError{status, fmt.Sprintf("%d %s: %s", status, e.Error.Type, truncate(e.Error.Reason))}
	}
	return &statusError{status, fmt.Sprintf("%d: %s", status, truncate(string(body)))}
}

// Retryable reports whether an error of Setup or EnsureIndices may go away
// by itself: the node did not answer (down, restarting, too slow) or
// answered 429 or 5xx. A 4xx refusal (bad credentials, a mapping conflict)
// is the configuration's fault and is not retryable — classify's rule for
// bulk items, applied to the admin requests.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	var se *statusError
	if errors.As(err, &se) {
		return se.status == http.StatusTooManyRequests || se.status >= 500
	}
	return true
}
