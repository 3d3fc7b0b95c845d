package elasticsearch

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/elastic/go-elasticsearch/v8/esapi"
)

// EnsureIndices installs an index template for each of the two indices (so
// daily indices get the mapping when the first document creates them) and,
// with index_suffix none, creates the indices themselves. It is idempotent:
// templates are overwritten with the current mapping and an existing index
// is left as it is. Call it once at start-up; it is the only call that
// changes cluster settings.
func (ix *Indexer) EnsureIndices(ctx context.Context) error {
	for _, name := range []string{ix.cfg.EventsIndex, ix.cfg.AlertsIndex} {
		if err := ix.ensureIndex(ctx, name); err != nil {
			return fmt.Errorf("elasticsearch: ensure index %s: %w", name, err)
		}
	}
	return nil
}

func (ix *Indexer) ensureIndex(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, ix.cfg.RequestTimeout)
	defer cancel()
	tmpl := map[string]any{
		"index_patterns": []string{name, name + "-*"},
		// Above the built-in templates' priorities (100 for logs-*-*), which
		// do not match these names anyway.
		"priority": 200,
		"template": map[string]any{"mappings": ecsMapping()},
	}
	body, err := json.Marshal(tmpl)
	if err != nil {
		return err
	}
	res, err := ix.client.Indices.PutIndexTemplate(name, strings.NewReader(string(body)),
		ix.client.Indices.PutIndexTemplate.WithContext(ctx))
	if err := responseErr(res, err, ""); err != nil {
		return fmt.Errorf("put index template: %w", err)
	}
	if ix.cfg.IndexSuffix == SuffixDaily {
		return nil
	}
	res, err = ix.client.Indices.Create(name, ix.client.Indices.Create.WithContext(ctx))
	if err := responseErr(res, err, "resource_already_exists_exception"); err != nil {
		return fmt.Errorf("create index: %w", err)
	}
	return nil
}

// responseErr turns a failed admin response into an error, treating an
// error of type okType as success.
func responseErr(res *esapi.Response, err error, okType string) error {
	if err != nil {
		return err
	}
	defer func() { _ = res.Body.Close() }()
	if !res.IsError() {
		_, _ = io.Copy(io.Discard, res.Body)
		return nil
	}
	var e struct {
		Error struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"error"`
	}
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if json.Unmarshal(raw, &e) == nil && e.Error.Type != "" {
		if okType != "" && e.Error.Type == okType {
			return nil
		}
		return fmt.Errorf("%d %s: %s", res.StatusCode, e.Error.Type, truncate(e.Error.Reason))
	}
	return fmt.Errorf("%d: %s", res.StatusCode, truncate(string(raw)))
}

// ecsMapping is the minimal explicit ECS mapping shared by events and
// alerts: identifiers and enumerations as keyword, addresses as ip, times as
// date, *.geo.location as geo_point, and the free-text originals
// (user_agent.original, url.original) as text with a keyword sub-field. Any
// other string is mapped keyword by a dynamic template, as ECS does.
func ecsMapping() map[string]any {
	kw := prop("keyword")
	long := prop("long")
	date := prop("date")
	textKW := map[string]any{"type": "text", "fields": map[string]any{"keyword": map[string]any{"type": "keyword", "ignore_above": 1024}}}
	endpoint := obj(map[string]any{
		"ip": prop("ip"), "port": long, "address": kw, "domain": kw, "bytes": long,
		"geo": obj(map[string]any{
			"location": prop("geo_point"), "country_iso_code": kw, "country_name": kw, "city_name": kw,
		}),
		"as": obj(map[string]any{
			"number": long, "organization": obj(map[string]any{"name": kw}),
		}),
	})
	credential := obj(map[string]any{"fingerprint": kw, "type": kw})
	return map[string]any{
		"dynamic_templates": []any{
			map[string]any{"strings_as_keyword": map[string]any{
				"match_mapping_type": "string",
				"mapping":            map[string]any{"type": "keyword", "ignore_above": 1024},
			}},
		},
		"properties": map[string]any{
			"@timestamp": date,
			"message":    prop("text"),
			"tags":       kw,
			"labels":     prop("object"),
			"event": obj(map[string]any{
				"id": kw, "kind": kw, "category": kw, "type": kw, "action": kw, "outcome": kw,
				"dataset": kw, "module": kw, "provider": kw, "severity": long, "duration": long,
				"created": date, "ingested": date,
			}),
			"source":      endpoint,
			"client":      endpoint,
			"destination": endpoint,
			"user":        obj(map[string]any{"id": kw, "name": kw, "email": kw, "domain": kw}),
			"user_agent":  obj(map[string]any{"original": textKW, "name": kw, "version": kw}),
			"http": obj(map[string]any{
				"version": kw,
				"request": obj(map[string]any{
					"id": kw, "method": kw, "referrer": kw, "mime_type": kw, "bytes": long,
					"body": obj(map[string]any{"bytes": long}),
				}),
				"response": obj(map[string]any{
					"status_code": long, "mime_type": kw, "bytes": long,
					"body": obj(map[string]any{"bytes": long}),
				}),
			}),
			"url": obj(map[string]any{
				"original": textKW, "scheme": kw, "domain": kw, "port": long, "path": kw, "query": kw,
			}),
			"cloud": obj(map[string]any{
				"provider": kw, "region": kw,
				"account": obj(map[string]any{"id": kw}),
				"service": obj(map[string]any{"name": kw}),
			}),
			"observer": obj(map[string]any{"name": kw, "hostname": kw, "type": kw, "vendor": kw, "product": kw}),
			"related":  obj(map[string]any{"ip": prop("ip"), "user": kw, "hosts": kw}),
			"rule": obj(map[string]any{
				"id": kw, "name": kw, "description": prop("text"), "author": kw, "reference": kw, "ruleset": kw,
			}),
			"threat": obj(map[string]any{
				"framework": kw, "technique": obj(map[string]any{"id": kw}),
			}),
			"trailwatch": obj(map[string]any{
				"actor": kw, "source": kw, "credential": credential,
				"raw":      obj(map[string]any{"origin": kw, "offset": long, "hash": kw, "collector": kw}),
				"severity": kw, "count": long, "window": kw,
				"first_seen": date, "last_seen": date, "event_ids": kw, "run_id": kw,
			}),
		},
	}
}

func prop(typ string) map[string]any { return map[string]any{"type": typ} }

func obj(props map[string]any) map[string]any { return map[string]any{"properties": props} }
