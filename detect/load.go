package detect

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// LoadDir loads every *.yaml and *.yml file under the given directories
// (recursively, in lexical order) as one rule set. It is all-or-nothing: if
// any file has any problem, it returns a nil set and every problem found,
// each as a *PosError, joined with errors.Join.
func LoadDir(dirs ...string) (*RuleSet, error) {
	files, err := ruleFiles(dirs)
	if err != nil {
		return nil, err
	}
	return LoadFiles(files...)
}

// ruleFiles lists the rule files under dirs, as LoadDir loads them.
func ruleFiles(dirs []string) ([]string, error) {
	var files []string
	var errs []error
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path != dir && strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if ext := filepath.Ext(path); ext == ".yaml" || ext == ".yml" {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("detect: rules dir: %w", err))
		}
	}
	return files, errors.Join(errs...)
}

// LoadFiles loads the given rule files as one rule set, all-or-nothing like
// LoadDir. Rule ids and macro and list names must be unique across all the
// files. Loading takes two passes: the macros and lists of every file are
// collected and checked first, then every rule is compiled with them.
func LoadFiles(paths ...string) (*RuleSet, error) {
	var errs []error
	var files []*ruleFile
	lib := newLibrary()
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("detect: %w", err))
			continue
		}
		f, err := decodeFile(path, data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		f.p.lib = lib
		lib.collect(f.p, f.macros, f.lists)
		files = append(files, f)
	}
	errs = append(errs, lib.resolve()...)
	set := &RuleSet{}
	seen := map[string]*Rule{}
	for _, f := range files {
		rules, err := f.parse()
		if err != nil {
			errs = append(errs, err)
		}
		for _, r := range rules {
			if first, ok := seen[r.ID]; ok {
				errs = append(errs, &PosError{File: r.File, Line: r.Line, Col: r.Col,
					Msg: fmt.Sprintf("id: duplicate rule id %q (first defined at %s)", r.ID, first.Pos())})
				continue
			}
			seen[r.ID] = r
			set.rules = append(set.rules, r)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return set, nil
}

// Parse parses and compiles the rules of one file. name is used in error
// positions. A file holds one YAML document: either a single rule mapping,
// or a mapping of the sections `rules` (a list of rule mappings), `macros`
// and `lists`; the file's rules may use its own macros and lists only (see
// LoadFiles for sharing them across files). On error it returns the rules
// that were valid and every problem joined.
func Parse(name string, data []byte) ([]*Rule, error) {
	f, err := decodeFile(name, data)
	if err != nil {
		return nil, err
	}
	f.p.lib = newLibrary()
	f.p.lib.collect(f.p, f.macros, f.lists)
	errs := f.p.lib.resolve()
	rules, err := f.parse()
	return rules, errors.Join(append(errs, err)...)
}

// fileSections are the top-level keys of a file that is not a single rule.
var fileSections = []string{"rules", "macros", "lists"}

// ruleFile is one decoded file, its sections not yet compiled.
type ruleFile struct {
	p             *parser
	macros, lists *yaml.Node
	rules         []*yaml.Node // rule mappings
}

// decodeFile decodes one file and splits its sections. Problems inside a
// section are kept in the file's parser; an error returned means nothing
// of the file can be used.
func decodeFile(name string, data []byte) (*ruleFile, error) {
	p := &parser{file: name, lines: strings.Split(string(data), "\n")}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &PosError{File: name, Line: 1, Col: 1, Msg: "file holds no rule"}
		}
		return nil, syntaxError(name, err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxError(name, err)
	default:
		return nil, p.pos(&extra, "one YAML document per file: list several rules under `rules:` instead of `---`")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, p.pos(root, "want a rule mapping or a `rules:` list, got %s", kindName(root))
	}
	f := &ruleFile{p: p}
	sectioned := false
	for i := 0; i < len(root.Content); i += 2 {
		if slices.Contains(fileSections, root.Content[i].Value) {
			sectioned = true
		}
	}
	if !sectioned {
		f.rules = []*yaml.Node{root}
		return f, nil
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch {
		case seen[k.Value]:
			p.errf(k, "%s: duplicate key", k.Value)
		case !slices.Contains(fileSections, k.Value):
			p.errf(k, "unknown top-level field %q: a file holds a single rule, or only `rules:`, `macros:` and `lists:`", k.Value)
		case k.Value == "macros":
			f.macros = v
		case k.Value == "lists":
			f.lists = v
		case deref(v).Kind != yaml.SequenceNode:
			p.errf(v, "rules: want a list of rules, got %s", kindName(v))
		default:
			f.rules = deref(v).Content
		}
		seen[k.Value] = true
	}
	return f, nil
}

// parse compiles the file's rules with p.lib.
func (f *ruleFile) parse() ([]*Rule, error) {
	var rules []*Rule
	for _, n := range f.rules {
		if r := f.p.rule(n); r != nil {
			rules = append(rules, r)
		}
	}
	return rules, errors.Join(f.p.errs...)
}

// parser collects every problem of one file.
type parser struct {
	file  string
	lines []string
	errs  []error
	lib   *library // macros and lists the file's expressions may use
}

func (p *parser) pos(n *yaml.Node, format string, args ...any) *PosError {
	return &PosError{File: p.file, Line: n.Line, Col: n.Column, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) errf(n *yaml.Node, format string, args ...any) {
	p.errs = append(p.errs, p.pos(n, format, args...))
}

// deref follows YAML aliases (*name) to the anchored node, so anchors can
// shorten repetitive test events.
func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return fmt.Sprintf("scalar %q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "unknown node"
}

// mapping iterates over a mapping's key/value pairs, reporting a non-mapping,
// duplicate keys and keys not in allowed.
func (p *parser) mapping(n *yaml.Node, path string, allowed []string, fn func(key string, k, v *yaml.Node)) bool {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		p.errf(n, "%s: want a mapping, got %s", path, kindName(n))
		return false
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := k.Value
		full := key
		if path != "" {
			full = path + "." + key
		}
		switch {
		case seen[key]:
			p.errf(k, "%s: duplicate key", full)
		case !slices.Contains(allowed, key):
			p.errf(k, "%s: unknown field (want one of %s)", full, strings.Join(allowed, ", "))
		default:
			seen[key] = true
			fn(full, k, v)
		}
	}
	return true
}

func (p *parser) str(n *yaml.Node, path string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.errf(n, "%s: want a string, got %s", path, kindName(n))
		return ""
	}
	return n.Value
}

// strs reads a list of strings; a single string is accepted as a list of one.
func (p *parser) strs(n *yaml.Node, path string) []string {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		return []string{n.Value}
	}
	if n.Kind != yaml.SequenceNode {
		p.errf(n, "%s: want a list of strings, got %s", path, kindName(n))
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, c := range n.Content {
		out = append(out, p.str(c, fmt.Sprintf("%s[%d]", path, i)))
	}
	return out
}

func (p *parser) positiveInt(n *yaml.Node, path string) int {
	v, err := strconv.Atoi(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil || v <= 0 {
		p.errf(n, "%s: want a positive integer, got %s", path, kindName(n))
		return 0
	}
	return v
}

func (p *parser) duration(n *yaml.Node, path string, allowZero bool) time.Duration {
	d, err := time.ParseDuration(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil || d < 0 || (d == 0 && !allowZero) {
		p.errf(n, "%s: want a positive duration such as 30s, 5m or 1h, got %s", path, kindName(n))
		return 0
	}
	return d
}

var (
	ruleFields = []string{"id", "title", "description", "severity", "tags", "references", "author", "where", "window", "sequence", "new_terms", "rate", "suppress", "routes", "tests"}
	idPattern  = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)
	tagPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.:-]*$`)
)

// rule parses one rule mapping; it returns nil if the rule has problems.
func (p *parser) rule(n *yaml.Node) *Rule {
	before := len(p.errs)
	r := &Rule{File: p.file, Line: n.Line, Col: n.Column, Severity: DefaultSeverity}
	var whereNode, testsNode *yaml.Node
	var suppress *time.Duration
	var kinds []*yaml.Node // window, sequence, new_terms, rate keys
	ok := p.mapping(n, "", ruleFields, func(key string, k, v *yaml.Node) {
		switch key {
		case "id":
			r.ID = p.str(v, key)
			if r.ID != "" && !idPattern.MatchString(r.ID) {
				p.errf(v, "id: %q must be lowercase letters, digits, '.', '_' or '-'", r.ID)
			}
		case "title":
			r.Title = p.str(v, key)
		case "description":
			r.Description = p.str(v, key)
		case "severity":
			r.Severity = p.str(v, key)
			if r.Severity != "" && !slices.Contains(Severities, r.Severity) {
				p.errf(v, "severity: %q is not one of %s", r.Severity, strings.Join(Severities, ", "))
			}
		case "tags":
			r.Tags = p.strs(v, key)
			for i, t := range r.Tags {
				if t != "" && !tagPattern.MatchString(t) {
					p.errf(v.Content[i], "tags[%d]: %q must be lowercase, such as attack.t1110 or owasp.api4", i, t)
				}
			}
		case "references":
			r.References = p.strs(v, key)
		case "author":
			r.Author = p.strs(v, key)
		case "where":
			whereNode = v
			r.Where = p.str(v, key)
		case "window":
			kinds = append(kinds, k)
			r.Window = p.window(v, key)
		case "sequence", "new_terms", "rate":
			kinds = append(kinds, k)
			p.kind(r, key, v)
		case "suppress":
			d := p.duration(v, key, true)
			suppress = &d
		case "routes":
			r.Routes = p.routes(v, key)
		case "tests":
			testsNode = v
		}
	})
	if !ok {
		return nil
	}
	p.kindDefaults(r, n, kinds, suppress != nil)
	for _, req := range []struct {
		name string
		val  string
	}{{"id", r.ID}, {"title", r.Title}, {"where", r.Where}} {
		if strings.TrimSpace(req.val) == "" {
			p.errf(n, "%s: required", req.name)
		}
	}
	if whereNode != nil && r.Where != "" {
		prog, err := compileWhere(r.Where, p.lib)
		if err != nil {
			p.errs = append(p.errs, p.exprError(whereNode, "where", r.Where, err))
		}
		r.where = prog
	}
	switch {
	case suppress != nil:
		r.Suppress = *suppress
	case r.Window != nil:
		r.Suppress = r.Window.Over
	}
	r.techniques = techniques(r.Tags)
	r.hash = p.lib.ruleHash(n)
	if testsNode != nil {
		r.Tests = p.tests(testsNode)
	}
	if len(p.errs) > before {
		return nil
	}
	return r
}
