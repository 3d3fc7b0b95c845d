package detect

import (
	"slices"
	"strings"

	"github.com/expr-lang/expr/ast"
	exprparser "github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// Keyed state follows the partitioning of its input (DESIGN.md, "Keyed
// state through Kafka"). The events topic is keyed by actor, so a rule that
// keeps state per actor — a windowless rule, or one grouped by
// trailwatch.actor among other fields — sees all of a group's events in one
// partition. Any other group key spreads a group over every partition: its
// rules run after a repartition topic keyed by that group key. Router makes
// the split: Local rules run where the events are read; each Family (rules
// sharing one list of key fields) gets the events that may match one of its
// rules, keyed by the family's key values.

// KeyFields returns the fields a rule keeps state by (a window's group_by,
// a sequence's, new_terms' or rate's `by`); nil for a windowless rule,
// which suppresses per actor.
func (r *Rule) KeyFields() []string {
	switch {
	case r.Window != nil:
		return r.Window.GroupBy
	case r.Sequence != nil:
		return r.Sequence.By
	case r.NewTerms != nil:
		return r.NewTerms.By
	case r.Rate != nil:
		return r.Rate.By
	}
	return nil
}

// keyPrograms returns the compiled KeyFields, parallel to them.
func (r *Rule) keyPrograms() []*vm.Program {
	switch {
	case r.Window != nil:
		return r.Window.programs
	case r.Sequence != nil:
		return r.Sequence.programs
	case r.NewTerms != nil:
		return r.NewTerms.programs
	case r.Rate != nil:
		return r.Rate.programs
	}
	return nil
}

// credentialField is the first choice of the actor key: an event with a
// credential fingerprint has "cred:" + fingerprint as its actor.
const credentialField = "trailwatch.credential.fingerprint"

// ActorLocal reports whether every group of the rule lives in one
// partition of the actor-keyed events topic: the rule is windowless, keys
// by trailwatch.actor, or keys by the credential fingerprint and its
// condition requires one (`trailwatch.credential.fingerprint != ""` among
// its top-level conjuncts), which for the events it sees is the actor.
func (r *Rule) ActorLocal() bool {
	f := r.KeyFields()
	if len(f) == 0 || slices.Contains(f, actorGroupName) {
		return true
	}
	return slices.Contains(f, credentialField) && requiresNonEmpty(r.Where, credentialField)
}

// requiresNonEmpty reports whether condition src is `field != ""` or a
// conjunction (&&, and) with that among its operands.
func requiresNonEmpty(src, field string) bool {
	tree, err := exprparser.Parse(src)
	if err != nil {
		return false
	}
	var walk func(n ast.Node) bool
	walk = func(n ast.Node) bool {
		b, ok := n.(*ast.BinaryNode)
		if !ok {
			return false
		}
		switch b.Operator {
		case "&&", "and":
			return walk(b.Left) || walk(b.Right)
		case "!=":
			l, r := b.Left, b.Right
			if s, ok := l.(*ast.StringNode); ok {
				l, r = r, s
			}
			s, ok := r.(*ast.StringNode)
			return ok && s.Value == "" && memberPath(l) == field
		}
		return false
	}
	return walk(tree.Node)
}

// memberPath returns the dotted path of a field reference (a.b.c), or "".
func memberPath(n ast.Node) string {
	switch n := n.(type) {
	case *ast.IdentifierNode:
		return n.Value
	case *ast.MemberNode:
		p, ok := n.Property.(*ast.StringNode)
		if !ok {
			return ""
		}
		if base := memberPath(n.Node); base != "" {
			return base + "." + p.Value
		}
	}
	return ""
}

// Family is the rules that share one list of key fields and are not
// actor-local: they run on the repartition topic, keyed by those fields.
type Family struct {
	// Name identifies the family in record headers: the key fields joined
	// by commas, in the rules' order.
	Name string
	// Rules are the family's rules, in load order.
	Rules *RuleSet

	programs []*vm.Program
	proj     *Projection // what the rules read; see Fields
}

// Route is one family an event goes to, with the record key to use.
type Route struct {
	Family *Family
	Key    []byte
}

// Router splits a rule set into actor-local rules and families, and routes
// events to families. It is not safe for concurrent use.
type Router struct {
	local    *RuleSet
	families []*Family
	byName   map[string]*Family
	vm       vm.VM
	vals     []string
}

// NewRouter splits set. Every rule lands in Local or in exactly one family.
func NewRouter(set *RuleSet) *Router {
	rt := &Router{local: &RuleSet{}, byName: map[string]*Family{}}
	for _, r := range set.rules {
		if r.ActorLocal() {
			rt.local.rules = append(rt.local.rules, r)
			continue
		}
		name := strings.Join(r.KeyFields(), ",")
		f, ok := rt.byName[name]
		if !ok {
			f = &Family{Name: name, Rules: &RuleSet{}, programs: r.keyPrograms()}
			rt.byName[name] = f
			rt.families = append(rt.families, f)
		}
		f.Rules.rules = append(f.Rules.rules, r)
	}
	for _, f := range rt.families {
		f.proj = fieldsOf(f.Rules.rules)
	}
	return rt
}

// Local returns the actor-local rules.
func (rt *Router) Local() *RuleSet { return rt.local }

// Families returns the families in order of their first rule.
func (rt *Router) Families() []*Family { return rt.families }

// Family returns the family with the given name, or nil.
func (rt *Router) Family(name string) *Family { return rt.byName[name] }

// Route appends to dst a route for each family one of whose rules may
// match ev, and returns it. A rule whose condition fails to evaluate counts
// as matching: the keyed side evaluates it again and reports the error. An
// event whose key cannot be computed is routed with an empty key for the
// same reason.
func (rt *Router) Route(ev *schema.Event, dst []Route) []Route {
	for _, f := range rt.families {
		if !rt.anyMatch(f, ev) {
			continue
		}
		key := append([]byte(nil), f.Name...)
		key = append(key, 0)
		for _, p := range f.programs {
			out, err := rt.vm.Run(p, ev)
			if err != nil {
				break
			}
			key = appendKeyValue(key, formatValue(out))
		}
		dst = append(dst, Route{Family: f, Key: key})
	}
	return dst
}

func (rt *Router) anyMatch(f *Family, ev *schema.Event) bool {
	for _, r := range f.Rules.rules {
		ok, err := r.condition().eval(&rt.vm, ev)
		if err != nil {
			return true
		}
		if !ok {
			continue
		}
		if r.Sequence == nil {
			return true
		}
		// A sequence also needs one of its steps to match.
		for _, st := range r.Sequence.Steps {
			if ok, err := st.cond.eval(&rt.vm, ev); ok || err != nil {
				return true
			}
		}
	}
	return false
}
