package detect

import (
	"slices"

	"go.yaml.in/yaml/v3"
)

// routes parses a rule's `routes:` list: the names of the notifier routes
// its alerts go to, carried in the alert as trailwatch.routes. The detector
// does not know the routes configured; RuleSet.Routes lists the names used
// so the caller can check them.
func (p *parser) routes(n *yaml.Node, path string) []string {
	names := p.strs(deref(n), path)
	for i, name := range names {
		at := deref(n)
		if at.Kind == yaml.SequenceNode {
			at = at.Content[i]
		}
		switch {
		case name == "":
		case !idPattern.MatchString(name):
			p.errf(at, "%s[%d]: route name %q must be lowercase letters, digits, '.', '_' or '-'", path, i, name)
		case slices.Contains(names[:i], name):
			p.errf(at, "%s[%d]: %q listed twice", path, i, name)
		}
	}
	return names
}

// Routes returns the route names the rules use, sorted, without duplicates.
func (rs *RuleSet) Routes() []string {
	var out []string
	for _, r := range rs.rules {
		for _, name := range r.Routes {
			if !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	slices.Sort(out)
	return out
}
