package identity

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/trailwatch/trailwatch/enrich/internal/reload"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// inventory is one loaded version of the file.
type inventory struct {
	stamp                       reload.Stamp
	entries                     int
	byFingerprint, byID, byUser map[string]schema.Identity
}

func (inv *inventory) lookup(fingerprint, id, user string) (schema.Identity, bool) {
	if fingerprint != "" {
		if v, ok := inv.byFingerprint[fingerprint]; ok {
			return v, true
		}
	}
	if id != "" {
		if v, ok := inv.byID[id]; ok {
			return v, true
		}
	}
	if user != "" {
		if v, ok := inv.byUser[user]; ok {
			return v, true
		}
	}
	return schema.Identity{}, false
}

// Column and key names, in YAML and in the CSV header.
const (
	keyFingerprint = "fingerprint"
	keyID          = "credential_id"
	keyUser        = "user"
	keyOwner       = "owner"
	keyTeam        = "team"
	keyService     = "service"
)

var keys = []string{keyFingerprint, keyID, keyUser, keyOwner, keyTeam, keyService}

// entry is one parsed record and the line it started on.
type entry struct {
	line   int
	fields map[string]string
}

func load(path string) (*inventory, error) {
	st, err := reload.Stat(path)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := formatOf(path)
	if err != nil {
		return nil, err
	}
	var es []entry
	if f == formatYAML {
		es, err = parseYAML(data)
	} else {
		es, err = parseCSV(data)
	}
	if err == nil {
		var inv *inventory
		if inv, err = build(es); err == nil {
			inv.stamp = st
			return inv, nil
		}
	}
	return nil, fmt.Errorf("%s:%w", path, err)
}

// lineError is "line: message", joined to the path by load.
func lineError(line int, format string, a ...any) error {
	return fmt.Errorf("%d: %s", line, fmt.Sprintf(format, a...))
}

// parseYAML reads a sequence of mappings with the keys above.
func parseYAML(data []byte) ([]entry, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		// yaml.v3 says "yaml: line N: msg"; rewrite it as "N: msg".
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if l, rest, ok := strings.Cut(strings.TrimPrefix(msg, "line "), ": "); ok && strings.HasPrefix(msg, "line ") {
			return nil, fmt.Errorf("%s: %s", l, rest)
		}
		return nil, fmt.Errorf("1: %s", msg)
	}
	if len(doc.Content) == 0 {
		return nil, nil // empty file: empty inventory
	}
	root := doc.Content[0]
	if root.Kind != yaml.SequenceNode {
		return nil, lineError(root.Line, "want a list of entries")
	}
	es := make([]entry, 0, len(root.Content))
	for _, item := range root.Content {
		if item.Kind != yaml.MappingNode {
			return nil, lineError(item.Line, "want an entry (a mapping of %s)", strings.Join(keys, ", "))
		}
		e := entry{line: item.Line, fields: make(map[string]string, len(item.Content)/2)}
		for i := 0; i+1 < len(item.Content); i += 2 {
			k, v := item.Content[i], item.Content[i+1]
			if !isKey(k.Value) {
				return nil, lineError(k.Line, "unknown key %q (want %s)", k.Value, strings.Join(keys, ", "))
			}
			if v.Kind != yaml.ScalarNode {
				return nil, lineError(v.Line, "%s: want a string", k.Value)
			}
			if _, dup := e.fields[k.Value]; dup {
				return nil, lineError(k.Line, "%s: given twice", k.Value)
			}
			e.fields[k.Value] = strings.TrimSpace(v.Value)
		}
		es = append(es, e)
	}
	return es, nil
}

// parseCSV reads a header row naming columns from the keys above, then one
// entry per row; '#' starts a comment line.
func parseCSV(data []byte) ([]entry, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.Comment = '#'
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, nil
	}
	if err != nil {
		return nil, csvError(err)
	}
	hline, _ := r.FieldPos(0)
	seen := map[string]bool{}
	for i, h := range header {
		h = strings.TrimSpace(strings.ToLower(h))
		if !isKey(h) {
			return nil, lineError(hline, "header: unknown column %q (want %s)", h, strings.Join(keys, ", "))
		}
		if seen[h] {
			return nil, lineError(hline, "header: column %q given twice", h)
		}
		seen[h] = true
		header[i] = h
	}
	var es []entry
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return es, nil
		}
		if err != nil {
			return nil, csvError(err)
		}
		line, _ := r.FieldPos(0)
		e := entry{line: line, fields: make(map[string]string, len(rec))}
		for i, v := range rec {
			e.fields[header[i]] = strings.TrimSpace(v)
		}
		es = append(es, e)
	}
}

func csvError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return lineError(pe.Line, "%v", pe.Err)
	}
	return fmt.Errorf("1: %w", err)
}

func isKey(k string) bool {
	for _, want := range keys {
		if k == want {
			return true
		}
	}
	return false
}

func isFingerprint(s string) bool {
	if len(s) != 24 {
		return false
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// build checks each entry and indexes it; a key listed twice is an error
// naming both lines.
func build(es []entry) (*inventory, error) {
	inv := &inventory{
		entries:       len(es),
		byFingerprint: map[string]schema.Identity{},
		byID:          map[string]schema.Identity{},
		byUser:        map[string]schema.Identity{},
	}
	firstLine := map[string]int{} // "key\x00value" -> line
	for _, e := range es {
		f := e.fields
		fp := strings.ToLower(f[keyFingerprint])
		if fp != "" && !isFingerprint(fp) {
			return nil, lineError(e.line, "fingerprint %q: want 24 hex digits", f[keyFingerprint])
		}
		if fp == "" && f[keyID] == "" && f[keyUser] == "" {
			return nil, lineError(e.line, "want at least one of fingerprint, credential_id, user")
		}
		id := schema.Identity{Owner: f[keyOwner], Team: f[keyTeam], Service: f[keyService], Known: true}
		if id.Owner == "" && id.Team == "" && id.Service == "" {
			return nil, lineError(e.line, "want at least one of owner, team, service")
		}
		for _, k := range []struct {
			name, v string
			m       map[string]schema.Identity
		}{{keyFingerprint, fp, inv.byFingerprint}, {keyID, f[keyID], inv.byID}, {keyUser, f[keyUser], inv.byUser}} {
			if k.v == "" {
				continue
			}
			if prev, dup := firstLine[k.name+"\x00"+k.v]; dup {
				return nil, lineError(e.line, "%s %q: already listed on line %d", k.name, k.v, prev)
			}
			firstLine[k.name+"\x00"+k.v] = e.line
			k.m[k.v] = id
		}
	}
	return inv, nil
}
