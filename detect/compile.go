package detect

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	exprparser "github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
	"go.yaml.in/yaml/v3"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// compileWhere compiles a rule condition against schema.Event, so unknown
// fields and type mismatches are refused at load. Programs are run with a
// *schema.Event environment (see BenchmarkWhere for why a pointer).
//
// Every `x matches "constant"` whose x is a string becomes a call of a
// matcher with a literal prefilter (see prefilter.go): same result, but
// the regexp runs only on inputs that contain one of the pattern's
// required literals.
//
// lib (the parser's p.lib; nil for none) supplies the macros and lists
// (see macro.go): they are expanded before type checking, so every caller
// compiling a condition gets them by passing it.
func compileWhere(src string, lib *library) (*vm.Program, error) {
	ex := &expander{}
	opts := []expr.Option{expr.Env(schema.Event{}), expr.AsBool()}
	opts = append(opts, lib.options(ex)...)
	if tree, err := exprparser.Parse(src); err == nil {
		if lib.Len() > 0 {
			ast.Walk(&tree.Node, &expander{lib: lib})
		}
		mp := &matchPatcher{matchers: map[string]*matcher{}}
		ast.Walk(&tree.Node, mp)
		if len(mp.matchers) > 0 {
			opts = append(opts, expr.Function(matchFunc, func(args ...any) (any, error) {
				return args[1].(*matcher).match(args[0].(string)), nil
			}, new(func(string, *matcher) bool)))
			opts = append(opts, expr.Patch(&matchPatcher{matchers: mp.matchers, patch: true}))
		}
	}
	prog, err := expr.Compile(src, opts...)
	return prog, lib.annotate(err, ex.uses)
}

// matchFunc is the function `x matches "constant"` becomes:
// matchFunc(x, m) with m the pattern's *matcher, held in the tree as a
// constant so that whoever reads the compiled tree (the fast path, see
// fast.go) finds the matcher there.
const matchFunc = "__trailwatch_matches"

// matchPatcher first compiles the constant patterns of `matches` nodes,
// then, with patch set, replaces each such node whose left operand is a
// string with a call of matchFunc. Other nodes (a non-string or untyped
// operand, an invalid pattern) stay `matches`, so expr's own checks and
// errors apply unchanged.
type matchPatcher struct {
	matchers map[string]*matcher // pattern -> matcher; invalid patterns absent
	patch    bool
}

// Visit implements ast.Visitor.
func (p *matchPatcher) Visit(node *ast.Node) {
	b, ok := (*node).(*ast.BinaryNode)
	if !ok || b.Operator != "matches" {
		return
	}
	str, ok := b.Right.(*ast.StringNode)
	if !ok {
		return
	}
	if !p.patch {
		if _, ok := p.matchers[str.Value]; !ok {
			if m, err := newMatcher(str.Value); err == nil {
				p.matchers[str.Value] = m // else left to expr, which reports it
			}
		}
		return
	}
	m, ok := p.matchers[str.Value]
	if !ok || b.Left.Type() == nil || b.Left.Type().Kind() != reflect.String {
		return
	}
	ast.Patch(node, &ast.CallNode{
		Callee:    &ast.IdentifierNode{Value: matchFunc},
		Arguments: []ast.Node{b.Left, &ast.ConstantNode{Value: m}},
	})
}

// compileGroupBy compiles one group_by field; its result must be a scalar
// that prints well as a group key value.
func compileGroupBy(src string, lib *library) (*vm.Program, error) {
	ex := &expander{}
	prog, err := expr.Compile(src, append(lib.options(ex), expr.Env(schema.Event{}))...)
	if err != nil {
		return nil, lib.annotate(err, ex.uses)
	}
	if t := prog.Node().Type(); t != nil {
		switch t.Kind() {
		case reflect.String, reflect.Bool, reflect.Interface,
			reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
			reflect.Float32, reflect.Float64:
		default:
			return nil, fmt.Errorf("%q is of type %s; want a string, number or bool field", src, t)
		}
	}
	return prog, nil
}

// compileNumeric compiles a sum or avg field; its result must be a number.
func compileNumeric(src string, lib *library) (*vm.Program, error) {
	ex := &expander{}
	prog, err := expr.Compile(src, append(lib.options(ex), expr.Env(schema.Event{}))...)
	if err != nil {
		return nil, lib.annotate(err, ex.uses)
	}
	t := prog.Node().Type()
	if t == nil {
		return nil, fmt.Errorf("%q has no static type; want a numeric field", src)
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return prog, nil
	}
	return nil, fmt.Errorf("%q is of type %s; want a numeric field", src, t)
}

// exprError locates an expr compile error inside the YAML scalar n that
// holds src, and names the offending dotted field in full.
func (p *parser) exprError(n *yaml.Node, path, src string, err error) error {
	var fe *file.Error
	if !errors.As(err, &fe) {
		return p.pos(n, "%s: %v", path, err)
	}
	msg := fe.Message
	runes := []rune(src)
	from := min(max(fe.From, 0), len(runes))
	if strings.HasPrefix(msg, "unknown name ") || strings.Contains(msg, " has no field ") {
		start, end := from, from
		for start > 0 && isIdentRune(runes[start-1]) {
			start--
		}
		for end < len(runes) && isIdentRune(runes[end]) {
			end++
		}
		if ident := string(runes[start:end]); ident != "" {
			if strings.HasPrefix(msg, "unknown name ") {
				msg = fmt.Sprintf("unknown name %q", ident)
			} else {
				msg = fmt.Sprintf("unknown name %q (%s)", ident, msg)
			}
			from = start
		}
	}
	// Line and column of the error inside src, 1-based line, 0-based col.
	line, col := 1, 0
	for _, r := range runes[:from] {
		if r == '\n' {
			line++
			col = 0
		} else {
			col++
		}
	}
	pe := &PosError{File: p.file, Line: n.Line, Col: n.Column + col, Msg: path + ": " + msg}
	switch n.Style {
	case yaml.LiteralStyle, yaml.FoldedStyle:
		// Block scalars start on the line after the indicator; every
		// content line shares the block's indentation.
		pe.Line = n.Line + line
		pe.Col = col + 1
		if n.Line < len(p.lines) {
			first := p.lines[n.Line]
			pe.Col += len(first) - len(strings.TrimLeft(first, " "))
		}
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		pe.Col++
		if line > 1 {
			pe.Line, pe.Col = n.Line, n.Column
		}
	default:
		if line > 1 {
			pe.Line, pe.Col = n.Line, n.Column
		}
	}
	return pe
}

func isIdentRune(r rune) bool {
	return r == '_' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

// attackTag matches MITRE ATT&CK technique tags such as attack.t1110 or
// attack.t1110.001.
var attackTag = regexp.MustCompile(`^attack\.(t\d{4}(?:\.\d{3})?)$`)

// techniques maps attack.tNNNN tags to ECS threat.technique entries.
func techniques(tags []string) []schema.ThreatTechnique {
	var out []schema.ThreatTechnique
	for _, t := range tags {
		if m := attackTag.FindStringSubmatch(t); m != nil {
			out = append(out, schema.ThreatTechnique{ID: strings.ToUpper(m[1])})
		}
	}
	return out
}
