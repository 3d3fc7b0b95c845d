package elasticsearch

import (
	"slices"
	"strings"
)

// The explicit ECS mappings of the two kinds of document. Every field of
// schema.Event and schema.Alert is listed (mapping_test.go walks both
// structs to prove it) with the type ECS gives it: keyword for identifiers
// and enumerations, ip for addresses, date for times, geo_point for
// locations, long / double / boolean for numbers and flags, text for prose.
//
// The root is "dynamic": false: a field trailwatch does not know yet (a
// newer producer, a hand-written document) is kept in _source but not
// indexed, instead of being guessed (mapping explosion, wrong types) or
// refused ("strict" would send audit records to the dead-letter topic just
// because the schema grew before `trailwatch setup elasticsearch` ran
// again). Free-form maps (labels, trailwatch.extra, trailwatch.group_key)
// are flattened on Elasticsearch; OpenSearch's flat_object cannot be
// aggregated in Dashboards, so there they are objects whose sub-fields are
// mapped keyword by a dynamic template.

// eventsMapping is the mapping of the events index or data stream.
func eventsMapping(flavor string) map[string]any {
	return withFreeForm(flavor, map[string]any{
		"@timestamp":  date,
		"event":       eventMeta(),
		"source":      endpoint(),
		"client":      endpoint(),
		"destination": endpoint(),
		"user":        user(),
		"user_agent": obj(map[string]any{
			"original": keywordText, "name": kw, "version": kw,
			"os":     obj(map[string]any{"name": kw, "version": kw, "full": kw}),
			"device": obj(map[string]any{"name": kw}),
		}),
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
		"url": urlFields(),
		"cloud": obj(map[string]any{
			"provider": kw, "region": kw,
			"account": obj(map[string]any{"id": kw}),
			"service": obj(map[string]any{"name": kw}),
		}),
		"observer": obj(map[string]any{"name": kw, "hostname": kw, "type": kw, "vendor": kw, "product": kw}),
		"related":  obj(map[string]any{"ip": ip, "user": kw, "hosts": kw}),
		"tls": obj(map[string]any{
			"version": kw, "version_protocol": kw, "cipher": kw,
			"client": obj(map[string]any{"server_name": kw}),
		}),
		"service": obj(map[string]any{"id": kw, "name": kw, "type": kw}),
		"trace":   obj(map[string]any{"id": kw}),
		"error":   obj(map[string]any{"code": kw, "message": textKeyword, "type": kw}),
		// ECS maps threat.enrichments as nested, so that an indicator and
		// the field it matched stay paired in queries.
		"threat": obj(map[string]any{
			"enrichments": map[string]any{"type": "nested", "properties": map[string]any{
				"indicator": obj(map[string]any{
					"type": kw, "ip": ip, "url": keywordText, "domain": kw,
					"provider": kw, "description": textKeyword, "confidence": kw,
				}),
				"matched": obj(map[string]any{"atomic": kw, "field": kw, "type": kw}),
			}},
		}),
		"labels": freeForm,
		"tags":   kw,
		"trailwatch": obj(map[string]any{
			"actor": kw, "source": kw,
			"credential": credential(),
			"identity":   obj(map[string]any{"owner": kw, "team": kw, "service": kw, "known": boolean}),
			"raw":        rawRef(),
			"session":    obj(map[string]any{"id": kw, "start": date, "requests": long, "bytes": long}),
			"signals": obj(map[string]any{
				"first_seen": obj(map[string]any{
					"ip": boolean, "asn": boolean, "country": boolean, "user_agent": boolean,
				}),
				"distinct_ips": long, "distinct_actors": long,
				"travel": obj(map[string]any{
					"from_ip": ip, "from_country": kw, "distance_km": double,
					"seconds": long, "speed_kmh": double, "impossible": boolean,
				}),
			}),
			"hop": obj(map[string]any{
				"id": kw, "index": long, "duplicate": boolean, "first_event_id": kw, "client_ip": ip,
			}),
			"extra": freeForm,
		}),
	})
}

// alertsMapping is the mapping of the alerts index or data stream.
func alertsMapping(flavor string) map[string]any {
	return withFreeForm(flavor, map[string]any{
		"@timestamp": date,
		"event":      eventMeta(),
		"rule": obj(map[string]any{
			"id": kw, "name": kw, "description": textKeyword, "author": kw, "reference": kw, "ruleset": kw,
		}),
		"threat": obj(map[string]any{
			"framework": kw, "technique": obj(map[string]any{"id": kw}),
		}),
		"message": textKeyword,
		"source":  endpoint(),
		"user":    user(),
		"url":     urlFields(),
		"tags":    kw,
		"trailwatch": obj(map[string]any{
			"severity": kw, "actor": kw,
			"credential":      credential(),
			"group_key":       freeForm,
			"count":           long,
			"value":           double,
			"aggregation":     kw,
			"distinct_values": kw,
			"window":          kw,
			"first_seen":      date,
			"last_seen":       date,
			"event_ids":       kw,
			"raw":             rawRef(),
			"run_id":          kw,
			"routes":          kw,
		}),
	})
}

// rawRef maps trailwatch.raw: where a document's raw record is and its digest.
func rawRef() map[string]any {
	return obj(map[string]any{"origin": kw, "offset": long, "hash": kw, "collector": kw, "partition": long, "kafka_offset": long})
}

func eventMeta() map[string]any {
	return obj(map[string]any{
		"id": kw, "kind": kw, "category": kw, "type": kw, "action": kw, "outcome": kw,
		"dataset": kw, "module": kw, "provider": kw, "severity": long, "duration": long,
		"created": date, "ingested": date,
	})
}

func endpoint() map[string]any {
	return obj(map[string]any{
		"ip": ip, "port": long, "address": kw, "domain": kw, "bytes": long,
		"geo": obj(map[string]any{
			"location": prop("geo_point"), "country_iso_code": kw, "country_name": kw, "city_name": kw,
		}),
		"as": obj(map[string]any{
			"number": long, "organization": obj(map[string]any{"name": kw}),
		}),
	})
}

func user() map[string]any {
	return obj(map[string]any{"id": kw, "name": kw, "email": kw, "domain": kw})
}

func urlFields() map[string]any {
	return obj(map[string]any{
		"original": keywordText, "full": keywordText,
		"scheme": kw, "domain": kw, "port": long, "path": kw, "query": kw,
	})
}

func credential() map[string]any {
	return obj(map[string]any{
		"fingerprint": kw, "type": kw, "id": kw, "issuer": kw, "subject": kw, "client_id": kw,
	})
}

// freeForm marks a map[string]string field; withFreeForm replaces it by the
// flavor's mapping.
var freeForm = map[string]any{"type": "trailwatch-free-form"}

// withFreeForm builds the root mapping from props, mapping every freeForm
// field flattened (Elasticsearch) or as an object of keywords (OpenSearch).
func withFreeForm(flavor string, props map[string]any) map[string]any {
	root := map[string]any{"dynamic": false, "properties": props}
	var paths []map[string]any
	var walk func(prefix string, props map[string]any)
	walk = func(prefix string, props map[string]any) {
		for name, v := range props {
			m := v.(map[string]any)
			if m["type"] == freeForm["type"] {
				if flavor == FlavorOpenSearch {
					props[name] = map[string]any{"type": "object", "dynamic": true}
					paths = append(paths, map[string]any{prefix + name + "_as_keyword": map[string]any{
						"path_match":         prefix + name + ".*",
						"match_mapping_type": "string",
						"mapping":            map[string]any{"type": "keyword", "ignore_above": 1024},
					}})
				} else {
					props[name] = map[string]any{"type": "flattened", "ignore_above": 1024}
				}
				continue
			}
			if sub, ok := m["properties"].(map[string]any); ok {
				walk(prefix+name+".", sub)
			}
		}
	}
	walk("", props)
	if len(paths) > 0 {
		// Ordered by name, so the mapping (and its hash) does not depend
		// on map iteration order.
		slices.SortFunc(paths, func(a, b map[string]any) int { return strings.Compare(firstKey(a), firstKey(b)) })
		root["dynamic_templates"] = paths
	}
	return root
}

func firstKey(m map[string]any) string {
	for k := range m {
		return k
	}
	return ""
}

// Leaf mappings. They are shared values: never mutate one.
var (
	kw      = map[string]any{"type": "keyword", "ignore_above": 1024}
	long    = prop("long")
	double  = prop("double")
	boolean = prop("boolean")
	date    = prop("date")
	ip      = prop("ip")
	// keywordText is ECS's shape for originals (user_agent.original,
	// url.original): keyword for exact match and aggregations, with a
	// .text sub-field for full-text search.
	keywordText = map[string]any{"type": "keyword", "ignore_above": 8191,
		"fields": map[string]any{"text": map[string]any{"type": "text"}}}
	// textKeyword is the shape for prose (message, error.message,
	// rule.description): full text, with a .keyword sub-field to aggregate
	// on short values.
	textKeyword = map[string]any{"type": "text",
		"fields": map[string]any{"keyword": map[string]any{"type": "keyword", "ignore_above": 1024}}}
)

func prop(typ string) map[string]any { return map[string]any{"type": typ} }

func obj(props map[string]any) map[string]any { return map[string]any{"properties": props} }
