package detect

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/file"
	exprparser "github.com/expr-lang/expr/parser"
	"go.yaml.in/yaml/v3"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// library holds the macros and lists of the files loaded together: named
// conditions and named constant lists that any rule's where, group_by and
// aggregated field may use by name. Names are global across the files.
//
// They are applied by patching the expr tree before it is type-checked: an
// identifier naming a macro is replaced by the macro's parsed expression
// (its own macro and list uses expanded), an identifier naming a list by an
// array of its constants. The result is checked against schema.Event as if
// written out in full, so a macro used with the wrong type is refused at
// the using rule.
type library struct {
	macros map[string]*macro
	lists  map[string]*list
	order  []string // macro names in definition order, for stable errors
}

// macro is one named expression.
type macro struct {
	name   string
	src    string
	p      *parser      // the defining file, for error positions
	node   *yaml.Node   // the expression's scalar
	refs   []string     // macro and list names it uses directly
	typ    reflect.Type // the checked result type; nil if unknown
	broken bool         // refused: expands to an untyped nil, so uses raise no second error
}

// list is one named list of constants, all of one type.
type list struct {
	name   string
	values []any // string, int, float64 or bool
	pos    string
}

// macroUse is where an expression being compiled used a macro or list.
type macroUse struct {
	name string
	loc  file.Location
}

// macroName is the form of macro and list names: no dots, so a name never
// reads as a field path.
var macroName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

func newLibrary() *library {
	return &library{macros: map[string]*macro{}, lists: map[string]*list{}}
}

// Len returns the number of macros and lists.
func (l *library) Len() int {
	if l == nil {
		return 0
	}
	return len(l.macros) + len(l.lists)
}

// has reports whether name is a macro or a list.
func (l *library) has(name string) bool {
	if l == nil {
		return false
	}
	_, m := l.macros[name]
	_, s := l.lists[name]
	return m || s
}

// pos returns "file:line:col" of a macro or list definition.
func (l *library) pos(name string) string {
	if m, ok := l.macros[name]; ok {
		return fmt.Sprintf("%s:%d:%d", m.p.file, m.node.Line, m.node.Column)
	}
	if s, ok := l.lists[name]; ok {
		return s.pos
	}
	return ""
}

// checkName refuses a macro or list name that is malformed, already
// defined, or that would hide an event field or an expr builtin.
func (l *library) checkName(p *parser, k *yaml.Node, path string) bool {
	name := k.Value
	if !macroName.MatchString(name) {
		p.errf(k, "%s: name must be lowercase letters, digits and '_', not starting with a digit", path)
		return false
	}
	if l.has(name) {
		p.errf(k, "%s: duplicate macro or list name (first defined at %s)", path, l.pos(name))
		return false
	}
	if _, ok := builtin.Index[name]; ok {
		p.errf(k, "%s: %q is an expr builtin function", path, name)
		return false
	}
	if tree, err := exprparser.Parse(name); err != nil {
		p.errf(k, "%s: %q is an expr keyword", path, name)
		return false
	} else if id, ok := tree.Node.(*ast.IdentifierNode); !ok || id.Value != name {
		p.errf(k, "%s: %q is an expr keyword", path, name)
		return false
	}
	if _, err := expr.Compile(name, expr.Env(schema.Event{})); err == nil {
		p.errf(k, "%s: %q is an event field", path, name)
		return false
	}
	return true
}

// collect adds a file's `macros:` and `lists:` mappings (either may be nil)
// to the library, reporting problems on p.
func (l *library) collect(p *parser, macros, lists *yaml.Node) {
	if lists != nil {
		if lists = deref(lists); lists.Kind != yaml.MappingNode {
			p.errf(lists, "lists: want a mapping of list names to lists, got %s", kindName(lists))
		} else {
			for i := 0; i+1 < len(lists.Content); i += 2 {
				k, v := lists.Content[i], deref(lists.Content[i+1])
				path := "lists." + k.Value
				if !l.checkName(p, k, path) {
					continue
				}
				if s := l.list(p, v, path); s != nil {
					s.name, s.pos = k.Value, fmt.Sprintf("%s:%d:%d", p.file, k.Line, k.Column)
					l.lists[k.Value] = s
				}
			}
		}
	}
	if macros != nil {
		if macros = deref(macros); macros.Kind != yaml.MappingNode {
			p.errf(macros, "macros: want a mapping of macro names to expressions, got %s", kindName(macros))
		} else {
			for i := 0; i+1 < len(macros.Content); i += 2 {
				k, v := macros.Content[i], deref(macros.Content[i+1])
				path := "macros." + k.Value
				if !l.checkName(p, k, path) {
					continue
				}
				src := p.str(v, path)
				if src == "" {
					continue
				}
				l.macros[k.Value] = &macro{name: k.Value, src: src, p: p, node: v}
				l.order = append(l.order, k.Value)
			}
		}
	}
}

// list reads one list's constants; they must all be of one type.
func (l *library) list(p *parser, n *yaml.Node, path string) *list {
	if n.Kind != yaml.SequenceNode {
		p.errf(n, "%s: want a list of constants, got %s", path, kindName(n))
		return nil
	}
	s := &list{}
	var first reflect.Type
	ok := true
	for i, c := range n.Content {
		c = deref(c)
		var v any
		var err error
		switch {
		case c.Kind != yaml.ScalarNode || c.Tag == "!!null":
			err = fmt.Errorf("want a string, number or bool, got %s", kindName(c))
		case c.Tag == "!!int":
			v, err = strconv.Atoi(c.Value)
		case c.Tag == "!!float":
			v, err = strconv.ParseFloat(c.Value, 64)
		case c.Tag == "!!bool":
			v, err = strconv.ParseBool(c.Value)
		default:
			v = c.Value
		}
		if err == nil && first != nil && reflect.TypeOf(v) != first {
			err = fmt.Errorf("%v is a %T but the list holds %s values (quote numbers meant as strings)", c.Value, v, first)
		}
		if err != nil {
			p.errf(c, "%s[%d]: %v", path, i, err)
			ok = false
			continue
		}
		first = reflect.TypeOf(v)
		s.values = append(s.values, v)
	}
	if !ok {
		return nil
	}
	return s
}

// resolve parses and checks every macro once all files are collected:
// syntax, cycles (refused with the positions on the cycle), and the
// macro's own type check against schema.Event. Refused macros are marked
// broken.
func (l *library) resolve() []error {
	var errs []error
	for _, name := range l.order {
		m := l.macros[name]
		tree, err := exprparser.Parse(m.src)
		if err != nil {
			errs = append(errs, m.p.exprError(m.node, "macros."+name, m.src, err))
			m.broken = true
			continue
		}
		ast.Walk(&tree.Node, visitIdents(func(id *ast.IdentifierNode) {
			if l.has(id.Value) && !slices.Contains(m.refs, id.Value) {
				m.refs = append(m.refs, id.Value)
			}
		}))
	}
	// Cycles: depth-first, in definition order; each cycle is reported
	// once, at the macro where the search entered it.
	const (
		unseen = iota
		active
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(name string)
	visit = func(name string) {
		state[name] = active
		stack = append(stack, name)
		m := l.macros[name]
		for _, ref := range m.refs {
			if _, ok := l.macros[ref]; !ok {
				continue
			}
			switch state[ref] {
			case unseen:
				visit(ref)
			case active:
				i := slices.Index(stack, ref)
				cycle := append(slices.Clone(stack[i:]), ref)
				var at []string
				for _, c := range cycle[1 : len(cycle)-1] {
					at = append(at, c+" at "+l.pos(c))
				}
				msg := fmt.Sprintf("macros.%s: macro cycle %s", ref, strings.Join(cycle, " -> "))
				if len(at) > 0 {
					msg += " (" + strings.Join(at, ", ") + ")"
				}
				first := l.macros[ref]
				errs = append(errs, first.p.pos(first.node, "%s", msg))
				for _, c := range cycle {
					l.macros[c].broken = true
				}
			}
			if l.macros[ref].broken {
				m.broken = true
			}
		}
		stack = stack[:len(stack)-1]
		state[name] = done
	}
	for _, name := range l.order {
		if state[name] == unseen {
			visit(name)
		}
	}
	// Type check each macro on its own, dependencies first so a broken
	// macro is reported once, at its definition.
	checked := map[string]bool{}
	var check func(name string)
	check = func(name string) {
		m := l.macros[name]
		if checked[name] {
			return
		}
		checked[name] = true
		for _, ref := range m.refs {
			if _, ok := l.macros[ref]; ok {
				check(ref)
				if l.macros[ref].broken {
					m.broken = true
				}
			}
		}
		if m.broken {
			return
		}
		e := &expander{lib: l}
		prog, err := expr.Compile(m.src, expr.Env(schema.Event{}), expr.Patch(e))
		if err != nil {
			errs = append(errs, m.p.exprError(m.node, "macros."+name, m.src, l.annotate(err, e.uses)))
			m.broken = true
			return
		}
		m.typ = prog.Node().Type()
	}
	for _, name := range l.order {
		check(name)
	}
	return errs
}

// visitIdents is an ast.Visitor calling fn on every identifier.
type visitIdents func(*ast.IdentifierNode)

// Visit implements ast.Visitor.
func (f visitIdents) Visit(node *ast.Node) {
	if id, ok := (*node).(*ast.IdentifierNode); ok {
		f(id)
	}
}

// expander is the expr patcher replacing macro and list names; it records
// each use for error messages.
type expander struct {
	lib  *library
	uses []macroUse
}

// Visit implements ast.Visitor.
func (e *expander) Visit(node *ast.Node) {
	id, ok := (*node).(*ast.IdentifierNode)
	if !ok || !e.lib.has(id.Value) {
		return
	}
	loc := id.Location()
	e.uses = append(e.uses, macroUse{name: id.Value, loc: loc})
	n := e.lib.expansion(id.Value)
	// Every node of the expansion sits at the use, so an error inside it
	// points at the macro's name in the using expression.
	ast.Walk(&n, locator(loc))
	*node = n
}

// expansion returns a fresh tree for a macro or list name.
func (l *library) expansion(name string) ast.Node {
	if s, ok := l.lists[name]; ok {
		arr := &ast.ArrayNode{Nodes: make([]ast.Node, len(s.values))}
		for i, v := range s.values {
			switch v := v.(type) {
			case string:
				arr.Nodes[i] = &ast.StringNode{Value: v}
			case int:
				arr.Nodes[i] = &ast.IntegerNode{Value: v}
			case float64:
				arr.Nodes[i] = &ast.FloatNode{Value: v}
			case bool:
				arr.Nodes[i] = &ast.BoolNode{Value: v}
			}
		}
		return arr
	}
	m := l.macros[name]
	if m.broken {
		return &ast.ConstantNode{Value: nil}
	}
	// A fresh parse per use: the checker and later patchers rewrite
	// nodes in place, so uses must not share them.
	tree, err := exprparser.Parse(m.src)
	if err != nil {
		return &ast.ConstantNode{Value: nil}
	}
	ast.Walk(&tree.Node, &expander{lib: l})
	return tree.Node
}

// locator is an ast.Visitor setting every node's location.
type locator file.Location

// Visit implements ast.Visitor.
func (l locator) Visit(node *ast.Node) { (*node).SetLocation(file.Location(l)) }

// options returns the expr options applying the library, recording uses
// in e; none if the library is empty.
func (l *library) options(e *expander) []expr.Option {
	if l.Len() == 0 {
		return nil
	}
	e.lib = l
	return []expr.Option{expr.Patch(e)}
}

// annotate names the macro or list in an expr compile error located at
// one of its uses, keeping the *file.Error so exprError can position it.
func (l *library) annotate(err error, uses []macroUse) error {
	if err == nil || len(uses) == 0 {
		return err
	}
	var fe *file.Error
	isFile := errors.As(err, &fe)
	if isFile {
		for _, u := range uses {
			if fe.From >= u.loc.From && fe.From <= u.loc.To {
				out := *fe
				out.Message = fmt.Sprintf("%s: %s", l.describe(u.name), fe.Message)
				return &out
			}
		}
	}
	// The error is at an operator or call around the uses, or about the
	// whole expression: name them all, with their types, since one of
	// them is the likely culprit.
	var names []string
	for _, u := range uses {
		if m, ok := l.macros[u.name]; ok && m.broken {
			continue // already reported at its definition
		}
		if d := l.describe(u.name); !slices.Contains(names, d) {
			names = append(names, d)
		}
	}
	if len(names) == 0 {
		return err
	}
	if !isFile {
		return fmt.Errorf("%w (using %s)", err, strings.Join(names, ", "))
	}
	out := *fe
	out.Message = fmt.Sprintf("%s (using %s)", fe.Message, strings.Join(names, ", "))
	return &out
}

// describe names a macro or list with its type and definition, for errors.
func (l *library) describe(name string) string {
	if s, ok := l.lists[name]; ok {
		typ := "empty"
		if len(s.values) > 0 {
			typ = fmt.Sprintf("%T", s.values[0])
		}
		return fmt.Sprintf("list %q (of %s, defined at %s)", name, typ, s.pos)
	}
	m := l.macros[name]
	typ := "unknown type"
	if m.typ != nil {
		typ = m.typ.String()
	}
	return fmt.Sprintf("macro %q (%s, defined at %s)", name, typ, l.pos(name))
}
