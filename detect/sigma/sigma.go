package sigma

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Converted is one Sigma rule converted to a trailwatch rule.
type Converted struct {
	// SigmaID is the Sigma rule's id (normally a UUID); "" if it has none.
	SigmaID string
	// ID is the trailwatch rule id: "sigma-" and the Sigma id (or, without
	// one, the title in lowercase words).
	ID string
	// Title is the rule title.
	Title string
	// File is the Sigma file the rule came from.
	File string
	// YAML is a single-rule trailwatch rule file that detect.Parse loads.
	YAML []byte
}

// Problem is one reason a Sigma rule was not converted. A rule with any
// problem is not emitted.
type Problem struct {
	// File is the Sigma file.
	File string
	// RuleID is the Sigma rule id ("" if the rule has none).
	RuleID string
	// Title is the Sigma rule title.
	Title string
	// Reason says what is unsupported or malformed, and where in the rule.
	Reason string
}

// String formats the problem as "file: title (id): reason".
func (p Problem) String() string {
	who := p.Title
	if p.RuleID != "" {
		who += " (" + p.RuleID + ")"
	}
	if who == "" {
		return p.File + ": " + p.Reason
	}
	return p.File + ": " + strings.TrimSpace(who) + ": " + p.Reason
}

// Convert converts the Sigma rules of one file (one or more YAML
// documents). name is used in problems and Converted.File. Correlation
// rules may only reference rules of the same file; use ConvertFiles to
// resolve them across files.
func Convert(name string, data []byte) ([]Converted, []Problem) {
	docs, probs := parseFile(name, data)
	out, more := convertDocs(docs)
	return out, append(probs, more...)
}

// ConvertFiles converts every *.yml and *.yaml file under the given paths
// (files, or directories walked recursively in lexical order, skipping
// hidden directories) as one set, so correlation rules may reference rules
// in other files. Unreadable paths are reported as problems.
func ConvertFiles(paths ...string) ([]Converted, []Problem) {
	var docs []*doc
	var probs []Problem
	for _, root := range paths {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path != root && strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if ext := filepath.Ext(path); path != root && ext != ".yml" && ext != ".yaml" {
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil {
				probs = append(probs, Problem{File: path, Reason: err.Error()})
				return nil
			}
			ds, ps := parseFile(path, data)
			docs = append(docs, ds...)
			probs = append(probs, ps...)
			return nil
		})
		if err != nil {
			probs = append(probs, Problem{File: root, Reason: err.Error()})
		}
	}
	out, more := convertDocs(docs)
	return out, append(probs, more...)
}

// doc is one Sigma rule document.
type doc struct {
	file string
	r    sigmaRule
	// bad holds problems found before conversion (malformed document).
	bad []string
	// converted detection (base rules)
	ls    *logsource
	where ex
	probs []string
}

type sigmaRule struct {
	Title          string    `yaml:"title"`
	ID             string    `yaml:"id"`
	Name           string    `yaml:"name"`
	Status         string    `yaml:"status"`
	Description    string    `yaml:"description"`
	References     strList   `yaml:"references"`
	Author         strList   `yaml:"author"`
	Tags           strList   `yaml:"tags"`
	Level          string    `yaml:"level"`
	FalsePositives strList   `yaml:"falsepositives"`
	Action         string    `yaml:"action"`
	Logsource      logsrc    `yaml:"logsource"`
	Detection      yaml.Node `yaml:"detection"`
	Correlation    *corr     `yaml:"correlation"`
}

type logsrc struct {
	Category string `yaml:"category"`
	Product  string `yaml:"product"`
	Service  string `yaml:"service"`
}

// strList is a YAML list of strings that also accepts a single string.
type strList []string

// UnmarshalYAML accepts a list of strings or one string.
func (s *strList) UnmarshalYAML(n *yaml.Node) error {
	n = deref(n)
	if n.Kind == yaml.ScalarNode {
		if !isNull(n) {
			*s = strList{n.Value}
		}
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*s = l
	return nil
}

// parseFile splits a file into rule documents.
func parseFile(name string, data []byte) (docs []*doc, probs []Problem) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var root yaml.Node
		err := dec.Decode(&root)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			probs = append(probs, Problem{File: name, Reason: "YAML: " + err.Error()})
			break
		}
		if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
			probs = append(probs, Problem{File: name, Reason: "a Sigma rule must be a YAML mapping"})
			continue
		}
		d := &doc{file: name}
		if err := root.Content[0].Decode(&d.r); err != nil {
			d.r = sigmaRule{}
			scalars(root.Content[0], &d.r)
			d.bad = append(d.bad, "malformed Sigma rule: "+err.Error())
		}
		docs = append(docs, d)
	}
	if len(docs) == 0 && len(probs) == 0 {
		probs = append(probs, Problem{File: name, Reason: "file holds no Sigma rule"})
	}
	return docs, probs
}

// scalars recovers title and id of a rule that failed to decode, for its
// problem report.
func scalars(m *yaml.Node, r *sigmaRule) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if v := m.Content[i+1]; v.Kind == yaml.ScalarNode {
			switch m.Content[i].Value {
			case "title":
				r.Title = v.Value
			case "id":
				r.ID = v.Value
			}
		}
	}
}

// set is the documents converted together.
type set struct {
	byRef map[string]*doc // by id and by name; the first wins
}

func convertDocs(docs []*doc) ([]Converted, []Problem) {
	s := &set{byRef: map[string]*doc{}}
	for _, d := range docs {
		for _, ref := range []string{d.r.ID, d.r.Name} {
			if ref != "" {
				if _, dup := s.byRef[ref]; !dup {
					s.byRef[ref] = d
				}
			}
		}
	}
	for _, d := range docs {
		if d.r.Correlation == nil && d.bad == nil {
			s.detection(d)
		}
	}
	type result struct {
		c       Converted
		reasons []string
	}
	results := make([]result, len(docs))
	// consumers lists, per base rule, the correlations that reference it
	// without generate: true; such a base rule is not emitted on its own.
	consumers := map[*doc][]int{}
	for i, d := range docs {
		switch {
		case d.bad != nil:
			results[i].reasons = d.bad
		case d.r.Correlation != nil:
			results[i].c, results[i].reasons = s.correlation(d)
			if !d.r.Correlation.Generate {
				for _, ref := range d.r.Correlation.Rules {
					if b := s.byRef[ref]; b != nil && b.r.Correlation == nil {
						consumers[b] = append(consumers[b], i)
					}
				}
			}
		default:
			results[i].reasons = d.probs
			if len(d.probs) == 0 {
				results[i].c, results[i].reasons = render(d, and(leaf(d.ls.guard), d.where), "", nil)
			}
		}
	}
	var out []Converted
	var probs []Problem
	seen := map[string]bool{}
	for i, d := range docs {
		c, reasons := results[i].c, results[i].reasons
		emit := len(reasons) == 0
		if cs := consumers[d]; emit && len(cs) > 0 {
			emit = false
			if !slices.ContainsFunc(cs, func(j int) bool { return len(results[j].reasons) == 0 }) {
				reasons = []string{fmt.Sprintf("only used by correlation rule %q (generate: false), which was not converted", cmp(docs[cs[0]].r.ID, docs[cs[0]].r.Title))}
			}
		}
		if emit && seen[c.ID] {
			emit = false
			reasons = []string{fmt.Sprintf("trailwatch rule id %q is already used by another rule of the set", c.ID)}
		}
		for _, r := range reasons {
			probs = append(probs, Problem{File: d.file, RuleID: d.r.ID, Title: d.r.Title, Reason: r})
		}
		if emit {
			seen[c.ID] = true
			out = append(out, c)
		}
	}
	return out, probs
}

// detection converts a base rule's logsource and detection.
func (s *set) detection(d *doc) {
	c := &conv{}
	defer func() { d.probs = append(d.probs, c.problems...) }()
	if d.r.Action != "" {
		c.fail("action: %q: rule collections (action: global/reset/repeat) are not supported", d.r.Action)
		return
	}
	ls := d.r.Logsource
	c.ls = logsourceFor(ls.Category, ls.Product, ls.Service)
	if c.ls == nil {
		c.fail("logsource category=%q product=%q service=%q is not supported: only category webserver and product aws/service cloudtrail",
			ls.Category, ls.Product, ls.Service)
		return
	}
	d.ls = c.ls
	det := deref(&d.r.Detection)
	if det.Kind != yaml.MappingNode {
		c.fail("detection: required, a mapping of search identifiers and a condition")
		return
	}
	p := &condParser{c: c}
	var cond *yaml.Node
	nodes := map[string]*yaml.Node{}
	for i := 0; i+1 < len(det.Content); i += 2 {
		k, v := det.Content[i].Value, det.Content[i+1]
		switch k {
		case "condition":
			cond = deref(v)
		case "timeframe":
			c.fail("detection.timeframe: aggregations are not supported; use a correlation rule")
		default:
			p.names = append(p.names, k)
			nodes[k] = v
		}
	}
	done := map[string]ex{}
	p.sel = func(name string) ex {
		if x, ok := done[name]; ok {
			return x
		}
		x := c.selection("detection."+name, nodes[name])
		done[name] = x
		return x
	}
	var conds []string
	switch {
	case cond == nil:
		c.fail("detection.condition: required")
		return
	case cond.Kind == yaml.ScalarNode && !isNull(cond):
		conds = []string{cond.Value}
	case cond.Kind == yaml.SequenceNode:
		// A list of conditions matches when any does.
		for _, n := range cond.Content {
			conds = append(conds, deref(n).Value)
		}
	}
	if len(conds) == 0 {
		c.fail("detection.condition: want a condition string")
		return
	}
	var xs []ex
	for _, src := range conds {
		xs = append(xs, p.parse(src))
		if p.err != "" {
			c.fail("detection.condition %q: %s", src, p.err)
			p.err = ""
		}
	}
	d.where = or(xs...)
}
