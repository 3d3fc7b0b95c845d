package detect

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"regexp"
	"slices"
	"sort"

	"go.yaml.in/yaml/v3"
)

// Hash identifies the rule's definition: everything that decides when it
// fires and what its alerts say, including the macros and lists it uses,
// but not its title, description, references, author or tests. Key order,
// comments, quoting style and YAML anchors do not change it. Detector.Reload
// keeps the state of a rule whose id and Hash are unchanged.
func (r *Rule) Hash() string { return r.hash }

// hashIgnored are the rule fields that do not change what a rule does.
var hashIgnored = []string{"title", "description", "references", "author", "tests"}

// identToken finds the identifiers in an expression, to spot macro and
// list names without parsing (a name inside a string literal is a harmless
// false positive: it only makes a reload reset that rule).
var identToken = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)

// ruleHash hashes a rule mapping canonically, with the definitions of the
// macros and lists it uses (transitively).
func (l *library) ruleHash(n *yaml.Node) string {
	h := sha256.New()
	used := map[string]bool{}
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		hashNode(h, n, l, used)
	} else {
		type pair struct{ k, v *yaml.Node }
		var pairs []pair
		for i := 0; i+1 < len(n.Content); i += 2 {
			if !slices.Contains(hashIgnored, n.Content[i].Value) {
				pairs = append(pairs, pair{n.Content[i], n.Content[i+1]})
			}
		}
		sort.SliceStable(pairs, func(i, j int) bool { return pairs[i].k.Value < pairs[j].k.Value })
		writeHashString(h, "M")
		for _, p := range pairs {
			hashNode(h, p.k, l, used)
			hashNode(h, p.v, l, used)
		}
		writeHashString(h, "m")
	}
	// Definitions of what the rule uses, closed over macro references.
	var queue []string
	for name := range used {
		queue = append(queue, name)
	}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if m, ok := l.macros[name]; ok {
			for _, ref := range m.refs {
				if !used[ref] {
					used[ref] = true
					queue = append(queue, ref)
				}
			}
		}
	}
	names := make([]string, 0, len(used))
	for name := range used {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if m, ok := l.macros[name]; ok {
			writeHashString(h, "macro "+name)
			writeHashString(h, m.src)
		} else if s, ok := l.lists[name]; ok {
			writeHashString(h, "list "+name)
			for _, v := range s.values {
				writeHashString(h, fmt.Sprintf("%T:%v", v, v))
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// hashNode writes a canonical encoding of n (mapping keys sorted, aliases
// followed) and records the macro and list names its scalars mention.
func hashNode(h hash.Hash, n *yaml.Node, l *library, used map[string]bool) {
	n = deref(n)
	switch n.Kind {
	case yaml.MappingNode:
		idx := make([]int, 0, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			idx = append(idx, i)
		}
		sort.SliceStable(idx, func(a, b int) bool { return n.Content[idx[a]].Value < n.Content[idx[b]].Value })
		writeHashString(h, "M")
		for _, i := range idx {
			hashNode(h, n.Content[i], l, used)
			hashNode(h, n.Content[i+1], l, used)
		}
		writeHashString(h, "m")
	case yaml.SequenceNode:
		writeHashString(h, "S")
		for _, c := range n.Content {
			hashNode(h, c, l, used)
		}
		writeHashString(h, "s")
	default:
		writeHashString(h, n.ShortTag())
		writeHashString(h, n.Value)
		if l.Len() > 0 {
			for _, tok := range identToken.FindAllString(n.Value, -1) {
				if l.has(tok) {
					used[tok] = true
				}
			}
		}
	}
}

// writeHashString writes s length-prefixed, so no two sequences of strings
// share an encoding.
func writeHashString(h hash.Hash, s string) {
	h.Write(binary.AppendUvarint(nil, uint64(len(s))))
	h.Write([]byte(s))
}
