package detect

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// Fast path for rule conditions.
//
// The expr VM reads every field through reflect and boxes every value into
// `any`; on the shipped pack that was most of the detection time. A
// condition is therefore also compiled, from the type-checked and
// optimized tree expr itself runs (program.Node(), so every patch the
// loader applied is included: prefilter matchers, macros, lists), into a
// tree of Go closures over *schema.Event that read fields through the
// typed accessors of fast_fields.go.
//
// Only constructs whose expr semantics are mirrored exactly are compiled,
// and none of them can fail at run time: && || ! not, == != < <= > >=
// (numbers, strings, bools, nil), `in` over constant lists and sets,
// []string fields and map keys, startsWith endsWith contains, string +,
// lower upper len, the prefilter matcher calls, and field, label and
// extra reads. Anything else (a time field, a predicate, a ternary, an
// index that may be out of range...) leaves the whole condition on the
// VM, so results, errors included, are always expr's own
// (TestFastMatchesVM, FuzzFastCondition).
//
// Internal API, for any per-step condition in the package:
//
//	c, err := compileWhere(src)  // *cond: the program and its fast path
//	ok, err := c.eval(&vm, ev)   // the closures if c.fast != nil, else vm.Run
//	c.slow                       // why the fast path is not used ("" if it is)
//	fastGroupKey(src)            // string accessor for a plain group_by path, or nil
//
// A *cond is immutable and safe for concurrent use; the *vm.VM is not.

// cond is a compiled rule condition: the expr program and, when every node
// of its tree is supported, the equivalent closure.
type cond struct {
	prog *vm.Program
	// fast evaluates the condition without the VM; nil if unsupported.
	fast func(*schema.Event) bool
	// slow says why fast is nil (the first unsupported construct).
	slow string
}

// newCond builds the fast path of a program compiled by compileWhere (or
// any program compiled against schema.Event).
func newCond(prog *vm.Program) *cond {
	c := &cond{prog: prog}
	if prog == nil {
		c.slow = "no program"
		return c
	}
	x, err := compileFast(prog.Node())
	switch {
	case err != nil:
		c.slow = err.Error()
	case x.kind != kBool:
		c.slow = "result is not a bool"
	default:
		c.fast = x.b
	}
	return c
}

// eval runs the condition on ev, through the fast path if there is one.
// m is the caller's reused VM; it is only used by conditions without one.
func (c *cond) eval(m *vm.VM, ev *schema.Event) (bool, error) {
	if c.fast != nil {
		return c.fast(ev), nil
	}
	out, err := m.Run(c.prog, ev)
	if err != nil {
		return false, err
	}
	ok, _ := out.(bool)
	return ok, nil
}

// fastKind is the Go type of a compiled node's value.
type fastKind uint8

const (
	kInvalid fastKind = iota
	kBool
	kInt // every integer type, widened to int64
	kFloat
	kString
	kStrings // []string
	kStrMap  // map[string]string
	kNil     // the nil literal
	kList    // a constant list or set: only the right operand of `in`
	kSlice   // a slice of structs: only its length and nil-ness are read
)

// fastField is a typed accessor, one function set per kind; it is also
// the value of a compiled node.
type fastField struct {
	kind fastKind
	b    func(*schema.Event) bool
	i    func(*schema.Event) int64
	f    func(*schema.Event) float64
	s    func(*schema.Event) string
	ss   func(*schema.Event) []string
	m    func(*schema.Event) map[string]string
	n    func(*schema.Event) int64 // kSlice: the length
	null func(*schema.Event) bool  // kSlice: the slice is nil
}

// fastExpr is a compiled node.
type fastExpr struct {
	fastField
	// konst: the value does not depend on the event; val holds it as a
	// bool, int64, float64, string or nil.
	konst bool
	val   any
	// list holds a kList's elements (same types as val); mapKey is the
	// key kind when the list was an optimizer set (map[int]struct{} or
	// map[string]struct{}), whose lookup fails on another needle type.
	list   []any
	mapKey reflect.Kind
}

var errFastUnsupported = errors.New("unsupported")

func fastUnsupported(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errFastUnsupported}, args...)...)
}

func fastConst(v any) (fastExpr, bool) {
	x := fastExpr{konst: true, val: v}
	switch v := v.(type) {
	case nil:
		x.kind = kNil
	case bool:
		x.kind, x.b = kBool, func(*schema.Event) bool { return v }
	case int:
		x.val = int64(v)
		x.kind, x.i = kInt, func(*schema.Event) int64 { return int64(v) }
	case int64:
		x.kind, x.i = kInt, func(*schema.Event) int64 { return v }
	case float64:
		x.kind, x.f = kFloat, func(*schema.Event) float64 { return v }
	case string:
		x.kind, x.s = kString, func(*schema.Event) string { return v }
	default:
		return x, false
	}
	return x, true
}

// compileFast turns a checked expr tree into closures.
func compileFast(n ast.Node) (fastExpr, error) {
	return (&fastCompiler{}).compile(n)
}

// fastCompiler compiles one tree; elem is what # stands for inside the
// predicate being compiled (see fastCompiler.predicate).
type fastCompiler struct {
	elem *fastExpr
}

func (fc *fastCompiler) compile(n ast.Node) (fastExpr, error) {
	switch n := n.(type) {
	case *ast.NilNode:
		x, _ := fastConst(nil)
		return x, nil
	case *ast.BoolNode:
		x, _ := fastConst(n.Value)
		return x, nil
	case *ast.StringNode:
		x, _ := fastConst(n.Value)
		return x, nil
	case *ast.IntegerNode:
		// The compiler pushes the literal as its checked type.
		switch t := n.Type(); {
		case t == nil || t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
			x, _ := fastConst(n.Value)
			return x, nil
		case t.Kind() == reflect.Float64:
			x, _ := fastConst(float64(n.Value))
			return x, nil
		}
		return fastExpr{}, fastUnsupported("integer literal of type %s", n.Type())
	case *ast.FloatNode:
		if t := n.Type(); t != nil && t.Kind() != reflect.Float64 {
			return fastExpr{}, fastUnsupported("float literal of type %s", t)
		}
		x, _ := fastConst(n.Value)
		return x, nil
	case *ast.ConstantNode:
		return fastConstantNode(n)
	case *ast.ArrayNode:
		x := fastExpr{fastField: fastField{kind: kList}, konst: true}
		for _, e := range n.Nodes {
			c, err := fc.compile(e)
			if err != nil {
				return fastExpr{}, err
			}
			if !c.konst {
				return fastExpr{}, fastUnsupported("list with a non-constant element")
			}
			x.list = append(x.list, c.val)
		}
		return x, nil
	case *ast.IdentifierNode, *ast.MemberNode:
		return fc.member(n)
	case *ast.PointerNode:
		if n.Name != "" || fc.elem == nil {
			return fastExpr{}, fastUnsupported("#%s", n.Name)
		}
		return *fc.elem, nil
	case *ast.UnaryNode:
		return fc.unary(n)
	case *ast.BinaryNode:
		return fc.binary(n)
	case *ast.BuiltinNode:
		return fc.builtin(n)
	case *ast.CallNode:
		// matchFunc(x, *matcher), see matchPatcher.
		id, ok := n.Callee.(*ast.IdentifierNode)
		if !ok || id.Value != matchFunc || len(n.Arguments) != 2 {
			return fastExpr{}, fastUnsupported("call of %s", n.Callee)
		}
		var m *matcher
		if mc, ok := n.Arguments[1].(*ast.ConstantNode); ok {
			m, _ = mc.Value.(*matcher)
		}
		if m == nil {
			return fastExpr{}, fastUnsupported("call of %s", id.Value)
		}
		if b, ok := n.Arguments[0].(*ast.BinaryNode); ok && b.Operator == "+" {
			// A concatenation is built in a stack buffer and only copied
			// for the regexp, when the prefilter lets it through.
			parts, err := fc.concatParts(b)
			if err != nil {
				return fastExpr{}, err
			}
			return fastBool(func(e *schema.Event) bool {
				var buf [512]byte
				b := buf[:0]
				for _, p := range parts {
					b = append(b, p(e)...)
				}
				return m.matchBytes(b)
			}), nil
		}
		arg, err := fc.compile(n.Arguments[0])
		if err != nil {
			return fastExpr{}, err
		}
		if arg.kind != kString {
			return fastExpr{}, fastUnsupported("matches on a non-string")
		}
		s := arg.s
		return fastBool(func(e *schema.Event) bool { return m.match(s(e)) }), nil
	}
	return fastExpr{}, fastUnsupported("%T", n)
}

func fastBool(f func(*schema.Event) bool) fastExpr {
	return fastExpr{fastField: fastField{kind: kBool, b: f}}
}

func fastString(f func(*schema.Event) string) fastExpr {
	return fastExpr{fastField: fastField{kind: kString, s: f}}
}

func fastInt(f func(*schema.Event) int64) fastExpr {
	return fastExpr{fastField: fastField{kind: kInt, i: f}}
}

// constantNode compiles a value the optimizer folded: a scalar, a list
// ([]any) or an `in` set (map[int]struct{}, map[string]struct{}).
func fastConstantNode(n *ast.ConstantNode) (fastExpr, error) {
	if x, ok := fastConst(n.Value); ok {
		return x, nil
	}
	x := fastExpr{fastField: fastField{kind: kList}, konst: true}
	switch v := n.Value.(type) {
	case []any:
		for _, e := range v {
			c, ok := fastConst(e)
			if !ok {
				return fastExpr{}, fastUnsupported("list element of type %T", e)
			}
			x.list = append(x.list, c.val)
		}
	case map[int]struct{}:
		x.mapKey = reflect.Int
		for k := range v {
			x.list = append(x.list, int64(k))
		}
	case map[string]struct{}:
		x.mapKey = reflect.String
		for k := range v {
			x.list = append(x.list, k)
		}
	default:
		return fastExpr{}, fastUnsupported("constant of type %T", n.Value)
	}
	return x, nil
}

// memberPath returns the dotted path of a chain of plain field reads.
func fastPath(n ast.Node) (string, bool) {
	switch n := n.(type) {
	case *ast.IdentifierNode:
		return n.Value, true
	case *ast.MemberNode:
		prop, ok := n.Property.(*ast.StringNode)
		if !ok || n.Optional || n.Method {
			return "", false
		}
		base, ok := fastPath(n.Node)
		if !ok {
			return "", false
		}
		return base + "." + prop.Value, true
	}
	return "", false
}

// member compiles a field read, or a key read of a map[string]string field.
func (fc *fastCompiler) member(n ast.Node) (fastExpr, error) {
	if p, ok := fastPath(n); ok {
		if f, ok := fastFields[p]; ok {
			return fastExpr{fastField: f}, nil
		}
	}
	mn, ok := n.(*ast.MemberNode)
	if !ok || mn.Optional || mn.Method {
		return fastExpr{}, fastUnsupported("name %s", n)
	}
	base, err := fc.compile(mn.Node)
	if err != nil {
		return fastExpr{}, err
	}
	if base.kind != kStrMap {
		return fastExpr{}, fastUnsupported("member %s", n)
	}
	key, err := fc.compile(mn.Property)
	if err != nil {
		return fastExpr{}, err
	}
	if key.kind != kString {
		return fastExpr{}, fastUnsupported("map key of %s", n)
	}
	// A missing key (or a nil map) reads as "", as expr's Fetch does.
	m := base.m
	if key.konst {
		k := key.val.(string)
		return fastString(func(e *schema.Event) string { return m(e)[k] }), nil
	}
	ks := key.s
	return fastString(func(e *schema.Event) string { return m(e)[ks(e)] }), nil
}

func (fc *fastCompiler) unary(n *ast.UnaryNode) (fastExpr, error) {
	x, err := fc.compile(n.Node)
	if err != nil {
		return fastExpr{}, err
	}
	switch {
	case (n.Operator == "!" || n.Operator == "not") && x.kind == kBool:
		b := x.b
		return fastBool(func(e *schema.Event) bool { return !b(e) }), nil
	}
	return fastExpr{}, fastUnsupported("unary %s on %v", n.Operator, x.kind)
}

func (fc *fastCompiler) builtin(n *ast.BuiltinNode) (fastExpr, error) {
	switch n.Name {
	case "any", "all", "none", "one":
		return fc.predicate(n)
	}
	if len(n.Arguments) != 1 || n.Map != nil || n.Threshold != nil {
		return fastExpr{}, fastUnsupported("builtin %s", n.Name)
	}
	x, err := fc.compile(n.Arguments[0])
	if err != nil {
		return fastExpr{}, err
	}
	switch {
	case n.Name == "lower" && x.kind == kString:
		s := x.s
		return fastString(func(e *schema.Event) string { return strings.ToLower(s(e)) }), nil
	case n.Name == "upper" && x.kind == kString:
		s := x.s
		return fastString(func(e *schema.Event) string { return strings.ToUpper(s(e)) }), nil
	case n.Name == "len" && x.kind == kString:
		// expr counts runes.
		s := x.s
		return fastInt(func(e *schema.Event) int64 { return int64(utf8.RuneCountInString(s(e))) }), nil
	case n.Name == "len" && x.kind == kStrings:
		ss := x.ss
		return fastInt(func(e *schema.Event) int64 { return int64(len(ss(e))) }), nil
	case n.Name == "len" && x.kind == kStrMap:
		m := x.m
		return fastInt(func(e *schema.Event) int64 { return int64(len(m(e))) }), nil
	case n.Name == "len" && x.kind == kSlice:
		return fastInt(x.n), nil
	}
	return fastExpr{}, fastUnsupported("builtin %s on %v", n.Name, x.kind)
}

func (fc *fastCompiler) binary(n *ast.BinaryNode) (fastExpr, error) {
	if n.Operator == "+" {
		return fc.concat(n)
	}
	l, err := fc.compile(n.Left)
	if err != nil {
		return fastExpr{}, err
	}
	r, err := fc.compile(n.Right)
	if err != nil {
		return fastExpr{}, err
	}
	switch op := n.Operator; op {
	case "&&", "and", "||", "or":
		if l.kind != kBool || r.kind != kBool {
			return fastExpr{}, fastUnsupported("%s on %v and %v", op, l.kind, r.kind)
		}
		lb, rb := l.b, r.b
		if op == "&&" || op == "and" {
			return fastBool(func(e *schema.Event) bool { return lb(e) && rb(e) }), nil
		}
		return fastBool(func(e *schema.Event) bool { return lb(e) || rb(e) }), nil
	case "==", "!=", "<", "<=", ">", ">=":
		f, err := fastCompare(op, l, r)
		if err != nil {
			return fastExpr{}, err
		}
		return fastBool(f), nil
	case "in":
		f, err := fastIn(l, r, n.Left.Type())
		if err != nil {
			return fastExpr{}, err
		}
		return fastBool(f), nil
	case "startsWith", "endsWith", "contains":
		if l.kind != kString || r.kind != kString {
			return fastExpr{}, fastUnsupported("%s on %v and %v", op, l.kind, r.kind)
		}
		return fastBool(fastStringOp(op, l, r)), nil
	}
	return fastExpr{}, fastUnsupported("operator %s", n.Operator)
}

// stringOp compiles startsWith, endsWith and contains.
func fastStringOp(op string, l, r fastExpr) func(*schema.Event) bool {
	test := strings.HasPrefix
	switch op {
	case "endsWith":
		test = strings.HasSuffix
	case "contains":
		test = strings.Contains
	}
	ls, rs := l.s, r.s
	if r.konst {
		c := r.val.(string)
		switch op {
		case "startsWith":
			return func(e *schema.Event) bool { return strings.HasPrefix(ls(e), c) }
		case "endsWith":
			return func(e *schema.Event) bool { return strings.HasSuffix(ls(e), c) }
		}
		return func(e *schema.Event) bool { return strings.Contains(ls(e), c) }
	}
	return func(e *schema.Event) bool { return test(ls(e), rs(e)) }
}

// concat compiles a chain of string `+` into one concatenation.
func (fc *fastCompiler) concat(n *ast.BinaryNode) (fastExpr, error) {
	parts, err := fc.concatParts(n)
	if err != nil {
		return fastExpr{}, err
	}
	return fastString(func(e *schema.Event) string {
		var buf [8]string
		for i, p := range parts {
			buf[i] = p(e)
		}
		return strings.Join(buf[:len(parts)], "")
	}), nil
}

// concatParts compiles the operands of a chain of string `+`, at most 8.
func (fc *fastCompiler) concatParts(n *ast.BinaryNode) ([]func(*schema.Event) string, error) {
	var parts []func(*schema.Event) string
	var walk func(n ast.Node) error
	walk = func(n ast.Node) error {
		if b, ok := n.(*ast.BinaryNode); ok && b.Operator == "+" {
			if err := walk(b.Left); err != nil {
				return err
			}
			return walk(b.Right)
		}
		x, err := fc.compile(n)
		if err != nil {
			return err
		}
		if x.kind != kString {
			return fastUnsupported("+ on %v", x.kind)
		}
		parts = append(parts, x.s)
		return nil
	}
	if err := walk(n); err != nil {
		return nil, err
	}
	if len(parts) > 8 {
		return nil, fastUnsupported("+ of %d strings", len(parts))
	}
	return parts, nil
}

func (k fastKind) String() string {
	return [...]string{"invalid", "bool", "int", "float", "string", "[]string", "map[string]string", "nil", "list", "slice"}[k]
}

// condition returns the rule's where condition with its fast path, built
// on first use: rules are immutable once loaded, and two detectors racing
// to build it build the same thing.
func (r *Rule) condition() *cond {
	if c := r.cond.Load(); c != nil {
		return c
	}
	c := newCond(r.where)
	r.cond.Store(c)
	return c
}

// fastMaxUnroll is the longest constant list a predicate is unrolled over.
const fastMaxUnroll = 64

// predicate compiles any, all, none and one over a constant list (a macro
// list, a literal) by compiling the predicate once per element, with #
// bound to that element: expr evaluates it element by element in order,
// and none of the supported nodes can fail, so the unrolled form returns
// the same.
func (fc *fastCompiler) predicate(n *ast.BuiltinNode) (fastExpr, error) {
	if len(n.Arguments) != 2 || n.Map != nil || n.Threshold != nil {
		return fastExpr{}, fastUnsupported("builtin %s", n.Name)
	}
	list, err := fc.compile(n.Arguments[0])
	if err != nil {
		return fastExpr{}, err
	}
	pred, ok := n.Arguments[1].(*ast.PredicateNode)
	if list.kind != kList || list.mapKey != reflect.Invalid || !ok || len(list.list) > fastMaxUnroll {
		return fastExpr{}, fastUnsupported("%s over %v", n.Name, list.kind)
	}
	tests := make([]func(*schema.Event) bool, len(list.list))
	outer := fc.elem
	defer func() { fc.elem = outer }()
	for i, v := range list.list {
		elem, _ := fastConst(v)
		fc.elem = &elem
		x, err := fc.compile(pred.Node)
		if err != nil {
			return fastExpr{}, err
		}
		if x.kind != kBool {
			return fastExpr{}, fastUnsupported("%s predicate of kind %v", n.Name, x.kind)
		}
		tests[i] = x.b
	}
	switch n.Name {
	case "any":
		return fastBool(func(e *schema.Event) bool {
			for _, t := range tests {
				if t(e) {
					return true
				}
			}
			return false
		}), nil
	case "all":
		return fastBool(func(e *schema.Event) bool {
			for _, t := range tests {
				if !t(e) {
					return false
				}
			}
			return true
		}), nil
	case "none":
		return fastBool(func(e *schema.Event) bool {
			for _, t := range tests {
				if t(e) {
					return false
				}
			}
			return true
		}), nil
	}
	return fastBool(func(e *schema.Event) bool {
		n := 0
		for _, t := range tests {
			if t(e) {
				n++
			}
		}
		return n == 1
	}), nil
}
