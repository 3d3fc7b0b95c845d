package detect

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

const routeRules = `
rules:
  - id: per-event
    title: windowless
    where: http.response.status_code == 500
  - id: per-actor
    title: actor window
    where: http.response.status_code == 401
    window: {count: 5, over: 1m, group_by: [trailwatch.actor, url.path]}
  - id: per-ip-401
    title: ip window
    where: http.response.status_code == 401
    window: {count: 5, over: 1m, group_by: [source.ip]}
  - id: per-ip-404
    title: ip window
    where: http.response.status_code == 404
    window: {count: 5, over: 1m, group_by: [source.ip]}
  - id: per-credential
    title: credential window, credential required
    where: http.response.status_code == 401 && trailwatch.credential.fingerprint != ""
    window: {count: 5, over: 1m, group_by: [trailwatch.credential.fingerprint]}
  - id: per-credential-or-none
    title: credential window, credential optional
    where: http.response.status_code == 403 || trailwatch.credential.fingerprint != ""
    window: {count: 5, over: 1m, group_by: [trailwatch.credential.fingerprint]}
  - id: per-user
    title: user window
    where: user.name != ""
    window: {count: 5, over: 1m, group_by: [user.name]}
`

func TestRouterSplitsByKey(t *testing.T) {
	rules, err := Parse("route.yaml", []byte(routeRules))
	if err != nil {
		t.Fatal(err)
	}
	rt := NewRouter(&RuleSet{rules: rules})
	var local []string
	for _, r := range rt.Local().Rules() {
		local = append(local, r.ID)
	}
	if fmt.Sprint(local) != "[per-event per-actor per-credential]" {
		t.Errorf("local rules %v, want [per-event per-actor per-credential]", local)
	}
	fams := rt.Families()
	if len(fams) != 3 || fams[0].Name != "source.ip" || fams[0].Rules.Len() != 2 || fams[1].Name != credentialField || fams[2].Name != "user.name" {
		t.Fatalf("families %+v, want source.ip (2 rules), the optional-credential rule and user.name", fams)
	}

	ev := func(ip string, status int, user string) *schema.Event {
		e := &schema.Event{}
		e.Source.IP, e.HTTP.Response.StatusCode, e.User.Name = ip, status, user
		return e
	}
	tests := []struct {
		name string
		ev   *schema.Event
		want []string // family names routed to
	}{
		{"matches one ip rule", ev("192.0.2.1", 401, ""), []string{"source.ip"}},
		{"matches the other ip rule: one record for the family", ev("192.0.2.1", 404, ""), []string{"source.ip"}},
		{"matches ip and user families", ev("192.0.2.1", 404, "alice"), []string{"source.ip", "user.name"}},
		{"matches ip and optional-credential families", ev("192.0.2.1", 403, ""), []string{credentialField}},
		{"matches only local rules", ev("192.0.2.1", 500, ""), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := rt.Route(tc.ev, nil)
			if len(got) != len(tc.want) {
				t.Fatalf("routed to %d families, want %v", len(got), tc.want)
			}
			for i, r := range got {
				if r.Family.Name != tc.want[i] {
					t.Errorf("route %d: family %s, want %s", i, r.Family.Name, tc.want[i])
				}
			}
		})
	}
	a := rt.Route(ev("192.0.2.1", 401, ""), nil)[0].Key
	b := rt.Route(ev("192.0.2.1", 404, ""), nil)[0].Key
	c := rt.Route(ev("192.0.2.2", 401, ""), nil)[0].Key
	if !bytes.Equal(a, b) || bytes.Equal(a, c) {
		t.Errorf("keys: same address %q vs %q, other address %q: want equal, then different", a, b, c)
	}
}
