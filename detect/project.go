package detect

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// Projected events.
//
// A family's rules read a few fields of an event, yet the repartition
// topic used to carry every event whole (~1.2 KB enriched). A Projection
// is the part of schema.Event that a set of rules can observe: the fields
// their conditions, key fields, aggregated fields, sequence steps and
// new_terms fields read — taken from the compiled, macro-expanded expr
// trees, so what is listed is what runs — plus what the detector itself
// reads of every event (time, id, what an alert copies). Projecting an
// event to it (zeroing every other field) therefore changes nothing the
// rules compute: same matches, keys, values, errors and alerts
// (TestProjectionKeepsAlerts, and the stages' TestKeyedProjectionSameAlerts).
//
// The analysis is conservative: a tree whose reads cannot be resolved to
// fields statically (the whole environment `$env` used as a value or
// indexed by a computed name, a method of the event) makes the projection
// whole, and a struct indexed by a computed name, a map, a slice and a
// time are kept whole.

// detectorFields are the fields the detector and alert building read of
// every event, whatever the rules: event time (windows, lateness, alert
// timestamps), the event id (dedup, sample ids, windowless alert ids, rule
// errors), what an alert copies (source, user, url, the credential), the
// actor (actor(): trailwatch.actor, else ActorKey's credential
// fingerprint, user name and source ip) and the windowless alert message
// (method, path, status), and the raw record the alert points back at
// (trailwatch.raw). See alert.go and detector.go.
var detectorFields = []string{
	"timestamp",
	"event.id",
	"source",
	"user",
	"url",
	"trailwatch.credential",
	"trailwatch.actor",
	"trailwatch.raw",
	"http.request.method",
	"http.response.status_code",
}

// Projection is a set of schema.Event fields: what a rule or a family of
// rules can read of an event. It is immutable and safe for concurrent use.
type Projection struct {
	// fields are canonical expr paths (schemaPath), sorted, none under
	// another; nil with whole set.
	fields []string
	whole  bool
	// copies are the struct field indexes of fields, for Apply.
	copies [][]int
	id     string
}

// Whole reports whether the projection is the whole event.
func (p *Projection) Whole() bool { return p.whole }

// Fields returns the expr paths of the fields kept, sorted (a path stands
// for everything under it), or nil when the projection is whole. The slice
// must not be modified.
func (p *Projection) Fields() []string { return p.fields }

// ID identifies the field set: "all" for the whole event, else 16 hex
// digits of a hash of Fields. Two projections with the same ID keep the
// same fields.
func (p *Projection) ID() string { return p.id }

// Apply returns the projection of src: src itself when the projection is
// whole, else dst holding src's kept fields and zero elsewhere. Slices and
// maps are shared with src, not copied.
func (p *Projection) Apply(dst, src *schema.Event) *schema.Event {
	if p.whole {
		return src
	}
	*dst = schema.Event{}
	d, s := reflect.ValueOf(dst).Elem(), reflect.ValueOf(src).Elem()
	for _, idx := range p.copies {
		d.FieldByIndex(idx).Set(s.FieldByIndex(idx))
	}
	return dst
}

// Fields returns what the family's rules can read of an event; see
// Projection.
func (f *Family) Fields() *Projection { return f.proj }

// Project returns ev projected to the family's fields (ev itself when the
// family reads it whole); dst is the scratch event the projection is
// written to.
func (f *Family) Project(dst, ev *schema.Event) *schema.Event { return f.proj.Apply(dst, ev) }

// Fields returns what the rule can read of an event, the detector's own
// reads included; see Projection.
func (r *Rule) Fields() *Projection {
	var c fieldCollector
	c.rule(r)
	return c.projection()
}

// fieldsOf returns the projection of the union of rules' reads.
func fieldsOf(rules []*Rule) *Projection {
	var c fieldCollector
	for _, r := range rules {
		c.rule(r)
	}
	return c.projection()
}

// fieldCollector gathers canonical paths; whole is set by any read that
// cannot be resolved.
type fieldCollector struct {
	paths map[string]bool
	whole bool
}

func (c *fieldCollector) add(path string) {
	p, ok := schemaPath(path)
	if !ok {
		c.whole = true
		return
	}
	if c.paths == nil {
		c.paths = map[string]bool{}
	}
	c.paths[p] = true
}

// rule adds everything r can read: every compiled program of the rule,
// the key and aggregated field sources themselves (the typed readers of
// fast_group.go read them by path), and detectorFields.
func (c *fieldCollector) rule(r *Rule) {
	for _, p := range detectorFields {
		c.add(p)
	}
	c.program(r.Where, r.where)
	var srcs []string
	var progs []*vm.Program
	switch {
	case r.Window != nil:
		srcs, progs = r.Window.GroupBy, r.Window.programs
		if r.Window.Agg != AggCount {
			c.program(r.Window.Field, r.Window.field)
			c.plain(r.Window.Field)
		}
	case r.Sequence != nil:
		srcs, progs = r.Sequence.By, r.Sequence.programs
		for _, st := range r.Sequence.Steps {
			c.program(st.Where, st.where)
		}
	case r.NewTerms != nil:
		srcs, progs = r.NewTerms.By, r.NewTerms.programs
		for i, src := range r.NewTerms.Fields {
			c.program(src, programAt(r.NewTerms.fields, i))
			c.plain(src)
		}
	case r.Rate != nil:
		srcs, progs = r.Rate.By, r.Rate.programs
	}
	for i, src := range srcs {
		c.program(src, programAt(progs, i))
		c.plain(src)
	}
}

func programAt(progs []*vm.Program, i int) *vm.Program {
	if i < len(progs) {
		return progs[i]
	}
	return nil
}

// plain adds src when it is a plain field path, as the typed readers take
// it; anything else is covered by its program.
func (c *fieldCollector) plain(src string) {
	if _, ok := schemaPath(src); ok && !strings.ContainsAny(src, " ()[]?#$\"'") {
		c.add(src)
	}
}

// program adds the reads of prog, compiled from src. A source without a
// program (never the case for a loaded rule) makes the projection whole.
func (c *fieldCollector) program(src string, prog *vm.Program) {
	if prog == nil {
		if strings.TrimSpace(src) != "" {
			c.whole = true
		}
		return
	}
	defer func() {
		// ast.Walk panics on a node type it does not know: a newer expr.
		if recover() != nil {
			c.whole = true
		}
	}()
	node := prog.Node()
	w := &readWalker{c: c, inner: map[ast.Node]bool{}}
	w.walk(&node)
}

// readWalker records the event fields an expr tree reads.
type readWalker struct {
	c *fieldCollector
	// inner marks the nodes that are the base of a member access: their
	// path is recorded by the access, at its full length.
	inner map[ast.Node]bool
	// mark is set during the first pass, which only fills inner.
	mark bool
}

func (w *readWalker) walk(n *ast.Node) {
	w.mark = true
	ast.Walk(n, w)
	w.mark = false
	ast.Walk(n, w)
}

// Visit implements ast.Visitor.
func (w *readWalker) Visit(n *ast.Node) {
	switch x := (*n).(type) {
	case *ast.BuiltinNode:
		// ast.Walk does not enter the map the optimizer folds into a
		// filter; it may read fields too.
		if x.Map != nil {
			ast.Walk(&x.Map, w)
		}
	case *ast.MemberNode:
		if w.mark {
			w.inner[x.Node] = true
		}
	}
	if w.mark || w.inner[*n] {
		return
	}
	switch (*n).(type) {
	case *ast.IdentifierNode, *ast.MemberNode:
		path, rooted, whole := envPath(*n)
		switch {
		case whole:
			w.c.whole = true
		case rooted:
			w.c.add(path)
		}
	}
}

// envPath resolves a member chain to the dotted path it reads of the
// environment: rooted is false when the chain does not start at the
// environment (a variable, a predicate's element); whole is set when it
// reads the environment in a way no path describes. A computed property
// ends the path at its base (everything under the base).
func envPath(n ast.Node) (path string, rooted, whole bool) {
	switch x := n.(type) {
	case *ast.IdentifierNode:
		switch {
		case x.Value == "$env":
			return "", true, false
		case isEnvField(x.Value):
			return x.Value, true, false
		case isEventMethod(x.Value):
			return "", false, true
		}
		return "", false, false
	case *ast.MemberNode:
		base, rooted, whole := envPath(x.Node)
		if !rooted || whole {
			return "", rooted, whole
		}
		if fixedBase(x.Node) {
			if s, ok := x.Property.(*ast.StringNode); ok {
				if base == "" {
					return s.Value, true, false
				}
				return base + "." + s.Value, true, false
			}
		}
		if base == "" {
			return "", false, true // $env[computed]
		}
		return base + dynamicMark, true, false
	case *ast.ChainNode:
		return envPath(x.Node)
	}
	return "", false, false
}

// dynamicMark ends a path whose next step is computed: schemaPath stops
// there, and no further property is appended (fixedBase).
const dynamicMark = ".#"

// fixedBase reports whether n, a member chain, has no computed step, so
// a constant property after it extends its path.
func fixedBase(n ast.Node) bool {
	switch x := n.(type) {
	case *ast.MemberNode:
		_, ok := x.Property.(*ast.StringNode)
		return ok && fixedBase(x.Node)
	case *ast.ChainNode:
		return fixedBase(x.Node)
	}
	return true
}

func (c *fieldCollector) projection() *Projection {
	p := &Projection{whole: c.whole}
	if p.whole {
		p.id = "all"
		return p
	}
	paths := make([]string, 0, len(c.paths))
	for f := range c.paths {
		paths = append(paths, f)
	}
	slices.Sort(paths)
	// Drop paths under another kept path: "source" covers "source.ip".
	for _, f := range paths {
		if n := len(p.fields); n > 0 && strings.HasPrefix(f, p.fields[n-1]+".") {
			continue
		}
		p.fields = append(p.fields, f)
		p.copies = append(p.copies, schemaIndex[f])
	}
	sum := sha256.Sum256([]byte(strings.Join(p.fields, "\n")))
	p.id = hex.EncodeToString(sum[:8])
	return p
}

// schemaField is one field of schema.Event, by expr path.
type schemaField struct {
	index []int
	// leaf: kept whole (not a struct, or a time).
	leaf bool
}

// schemaFields maps the expr path of every field of schema.Event, at
// every depth, to its index; schemaIndex is the same map of indexes.
var schemaFields, schemaIndex = func() (map[string]schemaField, map[string][]int) {
	fields := map[string]schemaField{}
	index := map[string][]int{}
	timeType := reflect.TypeFor[time.Time]()
	var walk func(t reflect.Type, prefix string, idx []int)
	walk = func(t reflect.Type, prefix string, idx []int) {
		for i := range t.NumField() {
			sf := t.Field(i)
			name := sf.Tag.Get("expr")
			if name == "" || !sf.IsExported() {
				continue
			}
			path := prefix + name
			at := append(slices.Clone(idx), i)
			leaf := sf.Type.Kind() != reflect.Struct || sf.Type == timeType
			fields[path] = schemaField{index: at, leaf: leaf}
			index[path] = at
			if !leaf {
				walk(sf.Type, path+".", at)
			}
		}
	}
	walk(reflect.TypeFor[schema.Event](), "", nil)
	return fields, index
}()

// schemaPath returns the canonical form of an expr path into
// schema.Event: cut after the first element that is kept whole (a leaf, a
// map, a slice, a time), or before the first name that is not a field
// (a map key, a method, a computed step). ok is false when nothing of the
// path names a field: the whole event.
func schemaPath(path string) (string, bool) {
	parts := strings.Split(path, ".")
	canon := ""
	for i, part := range parts {
		next := part
		if i > 0 {
			next = canon + "." + part
		}
		f, ok := schemaFields[next]
		if !ok {
			break
		}
		canon = next
		if f.leaf {
			break
		}
	}
	return canon, canon != ""
}

// envFields are the top-level expr names of schema.Event.
var envFields = func() map[string]bool {
	out := map[string]bool{}
	for p := range schemaFields {
		if !strings.Contains(p, ".") {
			out[p] = true
		}
	}
	return out
}()

func isEnvField(name string) bool { return envFields[name] }

// isEventMethod reports whether name is a method of the event, which may
// read any of its fields.
func isEventMethod(name string) bool {
	_, ok := reflect.TypeFor[*schema.Event]().MethodByName(name)
	return ok
}

// String lists the fields, for logs and test failures.
func (p *Projection) String() string {
	if p.whole {
		return "all"
	}
	return fmt.Sprintf("%s %v", p.id, p.fields)
}
