package detect

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// matchesConst finds the constant pattern of each `matches` in a where
// clause, in either expr string syntax.
var matchesConst = regexp.MustCompile("matches\\s+(`[^`]*`|\"(?:[^\"\\\\]|\\\\.)*\")")

// shippedPatterns returns the distinct constant patterns of the shipped
// rules' where clauses.
func shippedPatterns(t testing.TB) []string {
	t.Helper()
	rs, err := LoadDir("../rules")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rs.Rules() {
		for _, m := range matchesConst.FindAllStringSubmatch(r.Where, -1) {
			p := m[1][1 : len(m[1])-1]
			if m[1][0] == '"' {
				if p, err = strconv.Unquote(m[1]); err != nil {
					continue
				}
			}
			out = append(out, p)
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) < 10 {
		t.Fatalf("found only %d patterns in the shipped rules", len(out))
	}
	return out
}

// corpus returns strings from the rule tests, the demo access log and the
// normalizer goldens: whole lines and their quoted or spaced fields.
func corpus(t testing.TB) []string {
	t.Helper()
	var files []string
	for _, g := range []string{"../rules/*.yaml", "../testdata/demo/access.log", "../normalize/testdata/*/*.golden.json"} {
		m, err := filepath.Glob(g)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 3 {
		t.Fatalf("corpus: only %d files", len(files))
	}
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(b)) {
			out = append(out, line)
			out = append(out, strings.Split(line, `"`)...)
			out = append(out, strings.Fields(line)...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// checkConservative fails if the prefilter rejects s although the regexp
// matches it.
func checkConservative(t testing.TB, m *matcher, s string) bool {
	t.Helper()
	matched := m.re.MatchString(s)
	if matched && !m.mayMatch(s) {
		t.Errorf("prefilter of %q rejects %q, which matches", m.re, s)
	}
	if m.match(s) != matched {
		t.Errorf("match(%q) of %q != regexp", s, m.re)
	}
	return matched
}

func TestPrefilterConservative(t *testing.T) {
	patterns := shippedPatterns(t)
	inputs := corpus(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, p := range patterns {
		t.Run(p[:min(len(p), 40)], func(t *testing.T) {
			m, err := newMatcher(p)
			if err != nil {
				t.Fatal(err)
			}
			if m.lits == nil {
				t.Logf("no prefilter for %q", p)
			}
			var matched, rejected int
			try := func(s string) {
				if checkConservative(t, m, s) {
					matched++
				}
				if !m.mayMatch(s) {
					rejected++
				}
			}
			for _, s := range inputs {
				try(s)
			}
			// Splice required literals, case-flipped and with the
			// non-ASCII folds of k and s, into corpus strings.
			for range 3000 {
				s := inputs[rng.IntN(len(inputs))]
				i := rng.IntN(len(s) + 1)
				lit := "x"
				if len(m.lits) > 0 {
					lit = m.lits[rng.IntN(len(m.lits))]
				}
				switch rng.IntN(4) {
				case 1:
					lit = strings.ToUpper(lit)
				case 2:
					lit = strings.NewReplacer("k", "\u212a", "s", "\u017f").Replace(lit)
				case 3:
					lit = lit[:rng.IntN(len(lit)+1)]
				}
				try(s[:i] + lit + s[i:])
			}
			t.Logf("%d matched, %d rejected by the prefilter", matched, rejected)
		})
	}
}

func TestPrefilterCases(t *testing.T) {
	tests := []struct {
		pattern, in string
		want        bool
	}{
		{`(?i)sqlmap`, "SQLMAP/1.0", true},
		{`(?i)sqlmap`, "\u017fqlmap", true}, // ſ folds to s
		{`(?i)nikto`, "ni\u212ato", true},   // Kelvin sign folds to k
		{`(?i)sqlmap`, "curl/8", false},
		{`^/(env|jolokia)(/|$)`, "/env", true},
		{`^/(env|jolokia)(/|$)`, "/api/env", false},
		{`~$`, "/index.php~", true},
		{`(;|\|)(\s)*whoami`, "/x?a=1|whoami", true},
		{`a.*b`, "axxb", true},
		{`x*`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" "+tt.in, func(t *testing.T) {
			m, err := newMatcher(tt.pattern)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.match(tt.in); got != tt.want {
				t.Errorf("match = %v, want %v (lits %q)", got, tt.want, m.lits)
			}
			checkConservative(t, m, tt.in)
		})
	}
}

func FuzzPrefilter(f *testing.F) {
	patterns := shippedPatterns(f)
	matchers := make([]*matcher, len(patterns))
	for i, p := range patterns {
		m, err := newMatcher(p)
		if err != nil {
			f.Fatal(err)
		}
		matchers[i] = m
		for _, l := range m.lits {
			f.Add(l)
		}
	}
	for _, s := range corpus(f)[:200] {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, m := range matchers {
			checkConservative(t, m, s)
		}
	})
}
