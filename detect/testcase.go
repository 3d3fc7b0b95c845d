package detect

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

var (
	testFields   = []string{"name", "events", "expect"}
	expectFields = []string{"count", "group", "value", "values"}
)

// tests parses a rule's `tests:` list.
func (p *parser) tests(n *yaml.Node) []TestCase {
	if n.Kind != yaml.SequenceNode {
		p.errf(n, "tests: want a list of test cases, got %s", kindName(n))
		return nil
	}
	out := make([]TestCase, 0, len(n.Content))
	for i, tn := range n.Content {
		path := fmt.Sprintf("tests[%d]", i)
		tc := TestCase{Name: path, Pos: fmt.Sprintf("%s:%d:%d", p.file, tn.Line, tn.Column)}
		var hasEvents, hasExpect bool
		p.mapping(tn, path, testFields, func(key string, _, v *yaml.Node) {
			switch key {
			case path + ".name":
				tc.Name = p.str(v, key)
			case path + ".events":
				hasEvents = true
				tc.Events = p.events(v, key)
			case path + ".expect":
				hasExpect = true
				tc.Expect = p.expects(v, key)
			}
		})
		if tn.Kind == yaml.MappingNode {
			if !hasEvents {
				p.errf(tn, "%s.events: required", path)
			}
			if !hasExpect {
				p.errf(tn, "%s.expect: required (use `expect: []` for no alert)", path)
			}
		}
		out = append(out, tc)
	}
	return out
}

func (p *parser) events(n *yaml.Node, path string) []schema.Event {
	if n.Kind != yaml.SequenceNode {
		p.errf(n, "%s: want a list of events, got %s", path, kindName(n))
		return nil
	}
	out := make([]schema.Event, 0, len(n.Content))
	for i, en := range n.Content {
		ev, err := decodeEvent(en)
		if err != nil {
			p.errf(en, "%s[%d]: %v", path, i, err)
		}
		out = append(out, ev)
	}
	return out
}

// decodeEvent turns a YAML mapping into a schema.Event through its JSON
// form, refusing unknown fields. Dotted keys ("source.ip: 1.2.3.4") are
// expanded into nested objects, and "timestamp" is accepted for
// "@timestamp" (a YAML key cannot start with a bare @).
func decodeEvent(n *yaml.Node) (schema.Event, error) {
	var ev schema.Event
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		return ev, fmt.Errorf("want an event mapping, got %s", kindName(n))
	}
	var m map[string]any
	if err := n.Decode(&m); err != nil {
		return ev, err
	}
	if ts, ok := m["timestamp"]; ok {
		if _, dup := m["@timestamp"]; dup {
			return ev, fmt.Errorf("both timestamp and @timestamp set")
		}
		delete(m, "timestamp")
		m["@timestamp"] = ts
	}
	expanded, err := expandDotted(m)
	if err != nil {
		return ev, err
	}
	data, err := json.Marshal(expanded)
	if err != nil {
		return ev, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		return ev, err
	}
	return ev, nil
}

// expandDotted rewrites {"a.b": 1} as {"a": {"b": 1}}, recursively, except
// inside the free-form labels and trailwatch.extra maps whose keys may hold
// dots.
func expandDotted(m map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(m))
	for k, v := range m {
		parts := strings.Split(k, ".")
		last := parts[len(parts)-1]
		if sub, ok := v.(map[string]any); ok && last != "labels" && last != "extra" {
			var err error
			if v, err = expandDotted(sub); err != nil {
				return nil, err
			}
		}
		cur := out
		for i, part := range parts[:len(parts)-1] {
			next, exists := cur[part]
			if !exists {
				nm := map[string]any{}
				cur[part] = nm
				cur = nm
				continue
			}
			nm, ok := next.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("key %q conflicts with %q", k, strings.Join(parts[:i+1], "."))
			}
			cur = nm
		}
		if prev, exists := cur[last]; exists {
			pm, ok1 := prev.(map[string]any)
			vm, ok2 := v.(map[string]any)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("key %q set twice", k)
			}
			for vk, vv := range vm {
				if _, dup := pm[vk]; dup {
					return nil, fmt.Errorf("key %q set twice", k+"."+vk)
				}
				pm[vk] = vv
			}
			continue
		}
		cur[last] = v
	}
	return out, nil
}

func (p *parser) expects(n *yaml.Node, path string) []Expectation {
	if n.Kind != yaml.SequenceNode {
		p.errf(n, "%s: want a list of expected alerts ([] for none), got %s", path, kindName(n))
		return nil
	}
	out := make([]Expectation, 0, len(n.Content))
	for i, xn := range n.Content {
		xp := fmt.Sprintf("%s[%d]", path, i)
		var x Expectation
		p.mapping(xn, xp, expectFields, func(key string, _, v *yaml.Node) {
			switch key {
			case xp + ".count":
				x.Count = int64(p.positiveInt(v, key))
			case xp + ".value":
				f, err := strconv.ParseFloat(v.Value, 64)
				if v.Kind != yaml.ScalarNode || err != nil || math.IsNaN(f) {
					p.errf(v, "%s: want a number, got %s", key, kindName(v))
					return
				}
				x.Value = &f
			case xp + ".values":
				x.Values = p.strs(v, key)
			case xp + ".group":
				if v.Kind != yaml.MappingNode {
					p.errf(v, "%s: want a mapping of group_by field to value, got %s", key, kindName(v))
					return
				}
				x.Group = map[string]string{}
				for j := 0; j+1 < len(v.Content); j += 2 {
					x.Group[v.Content[j].Value] = p.str(v.Content[j+1], key+"."+v.Content[j].Value)
				}
			}
		})
		out = append(out, x)
	}
	return out
}
