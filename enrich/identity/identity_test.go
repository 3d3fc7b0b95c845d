package identity_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/enrich/identity"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

const (
	fpAlice = "0123456789abcdef01234567"
	fpOther = "ffffffffffffffffffffffff"
)

const inventoryYAML = `# identity inventory
- fingerprint: 0123456789ABCDEF01234567
  owner: alice@example.com
  team: payments
- credential_id: AKIAIOSFODNN7EXAMPLE
  owner: ci-bot
  service: deployer
- user: bob
  team: platform
`

const inventoryCSV = `fingerprint,credential_id,user,owner,team,service
# comment
0123456789ABCDEF01234567,,,alice@example.com,payments,
,AKIAIOSFODNN7EXAMPLE,,ci-bot,,deployer
,,bob,,platform,
`

func write(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func cred(fp, id string) schema.Event {
	return schema.Event{Trailwatch: schema.Trailwatch{Credential: schema.Credential{Fingerprint: fp, ID: id}}}
}

func withIdentity(ev schema.Event, id schema.Identity, tags ...string) schema.Event {
	ev.Trailwatch.Identity = id
	ev.Tags = tags
	return ev
}

func TestEnrich(t *testing.T) {
	alice := schema.Identity{Owner: "alice@example.com", Team: "payments", Known: true}
	ci := schema.Identity{Owner: "ci-bot", Service: "deployer", Known: true}
	bob := schema.Identity{Team: "platform", Known: true}
	preset := schema.Identity{Owner: "from-normalizer"}
	userBob := schema.Event{User: schema.User{Name: "bob"}}
	userEve := schema.Event{User: schema.User{Name: "eve"}}
	bobWithFP := cred(fpOther, "")
	bobWithFP.User.Name = "bob"

	in := []schema.Event{
		cred(fpAlice, ""),
		cred(fpAlice, "AKIAIOSFODNN7EXAMPLE"), // fingerprint wins
		cred(fpOther, "AKIAIOSFODNN7EXAMPLE"), // id is enough
		userBob,
		bobWithFP,
		cred(fpOther, ""),
		withIdentity(cred(fpOther, ""), schema.Identity{}, identity.UnknownTag), // retried
		withIdentity(cred(fpAlice, ""), schema.Identity{}, "x", identity.UnknownTag),
		userEve,
		{},
		withIdentity(cred(fpAlice, ""), preset),
	}
	want := []schema.Event{
		withIdentity(cred(fpAlice, ""), alice),
		withIdentity(cred(fpAlice, "AKIAIOSFODNN7EXAMPLE"), alice),
		withIdentity(cred(fpOther, "AKIAIOSFODNN7EXAMPLE"), ci),
		withIdentity(userBob, bob),
		withIdentity(bobWithFP, bob),
		withIdentity(cred(fpOther, ""), schema.Identity{}, identity.UnknownTag),
		withIdentity(cred(fpOther, ""), schema.Identity{}, identity.UnknownTag),
		withIdentity(cred(fpAlice, ""), alice, "x"),
		userEve,
		{},
		withIdentity(cred(fpAlice, ""), preset),
	}

	for _, tc := range []struct{ name, file, body string }{
		{"yaml", "inv.yaml", inventoryYAML},
		{"yml", "inv.yml", inventoryYAML},
		{"csv", "inv.csv", inventoryCSV},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := write(t, t.TempDir(), tc.file, tc.body)
			e, err := identity.New(identity.Config{File: path}, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = e.Close(t.Context()) })
			evs := make([]schema.Event, len(in))
			for i := range in {
				evs[i] = in[i]
				evs[i].Tags = append([]string(nil), in[i].Tags...)
			}
			for round := range 2 { // idempotent
				if err := e.Enrich(t.Context(), evs); err != nil {
					t.Fatal(err)
				}
				for i := range want {
					got := evs[i]
					if len(got.Tags) == 0 {
						got.Tags = nil
					}
					if !reflect.DeepEqual(got, want[i]) {
						t.Errorf("round %d event %d:\n got %+v\nwant %+v", round, i, got, want[i])
					}
				}
			}
			st := e.Stats()
			if st.Entries != 3 || st.Unknown != 4 || st.Known != 6 {
				t.Errorf("stats = %+v, want 3 entries, 6 known (the second round skips them), 4 unknown", st)
			}
		})
	}
}

func TestEnrichCancelled(t *testing.T) {
	path := write(t, t.TempDir(), "inv.yaml", inventoryYAML)
	e, err := identity.New(identity.Config{File: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(t.Context())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	evs := []schema.Event{cred(fpAlice, "")}
	if err := e.Enrich(ctx, evs); err == nil || evs[0].Trailwatch.Identity.Known {
		t.Fatalf("Enrich on a done ctx: err %v, event %+v", err, evs[0])
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct{ name, file, body, want string }{
		{"yaml syntax", "a.yaml", "- owner: x\n  team: [\n", ":2: "},
		{"yaml not a list", "a.yaml", "owner: x\n", ":1: want a list"},
		{"yaml unknown key", "a.yaml", "- user: a\n  owner: x\n- user: b\n  onwer: y\n", ":4: unknown key \"onwer\""},
		{"yaml bad fingerprint", "a.yaml", "- fingerprint: abc\n  owner: x\n", ":1: fingerprint \"abc\""},
		{"yaml no key", "a.yaml", "- owner: x\n", ":1: want at least one of fingerprint"},
		{"yaml no owner", "a.yaml", "- user: x\n", ":1: want at least one of owner"},
		{"yaml duplicate", "a.yaml", "- user: x\n  owner: a\n- user: x\n  owner: b\n", ":3: user \"x\": already listed on line 1"},
		{"csv unknown column", "a.csv", "user,owner,colour\n", ":1: header: unknown column \"colour\""},
		{"csv field count", "a.csv", "user,owner\nbob,x\nalice\n", ":3: "},
		{"csv duplicate", "a.csv", "# c\ncredential_id,owner\nAKIA1,x\nAKIA1,y\n", ":4: credential_id \"AKIA1\": already listed on line 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := write(t, t.TempDir(), tc.file, tc.body)
			_, err := identity.New(identity.Config{File: path}, nil)
			if err == nil || !strings.Contains(err.Error(), path+tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, path+tc.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  identity.Config
		want []string
	}{
		{"default is off and invalid", identity.DefaultConfig(), []string{"file: required"}},
		{"ok", identity.Config{File: "x.CSV", ReloadInterval: time.Second}, nil},
		{"bad", identity.Config{File: "x.json", ReloadInterval: -1}, []string{"file: \"x.json\": must end in", "reload_interval: must not be negative"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want %q", err, w)
				}
			}
		})
	}
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	path := write(t, dir, "inv.yaml", inventoryYAML)
	e, err := identity.New(identity.Config{File: path}, nil) // ReloadInterval 0: Reload by hand
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(t.Context())
	ownerOf := func(ev schema.Event) string {
		t.Helper()
		evs := []schema.Event{ev}
		if err := e.Enrich(t.Context(), evs); err != nil {
			t.Fatal(err)
		}
		return evs[0].Trailwatch.Identity.Owner
	}
	touch := func(body string, mtime time.Time) {
		t.Helper()
		write(t, dir, "inv.yaml", body)
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Now().Add(-time.Hour)

	steps := []struct {
		name        string
		body        string
		wantChanged bool
		wantErr     string
		wantOwner   string // of fpAlice after the step
	}{
		{name: "unchanged file", wantOwner: "alice@example.com"},
		{name: "new owner", body: "- fingerprint: " + fpAlice + "\n  owner: carol\n", wantChanged: true, wantOwner: "carol"},
		{name: "invalid keeps old", body: "- fingerprint: " + fpAlice + "\n  owner: dave\n- nonsense: 1\n", wantErr: path + ":3: unknown key", wantOwner: "carol"},
		{name: "fixed", body: "- fingerprint: " + fpAlice + "\n  owner: erin\n", wantChanged: true, wantOwner: "erin"},
	}
	for i, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if s.body != "" {
				touch(s.body, t0.Add(time.Duration(i)*time.Minute))
			}
			changed, err := e.Reload()
			if changed != s.wantChanged {
				t.Errorf("changed = %v, want %v", changed, s.wantChanged)
			}
			if s.wantErr == "" && err != nil || s.wantErr != "" && (err == nil || !strings.Contains(err.Error(), s.wantErr)) {
				t.Errorf("err = %v, want %q", err, s.wantErr)
			}
			if got := ownerOf(cred(fpAlice, "")); got != s.wantOwner {
				t.Errorf("owner = %q, want %q", got, s.wantOwner)
			}
		})
	}
	if st := e.Stats(); st.Reloads != 2 || st.ReloadErrors != 1 || st.Entries != 1 {
		t.Errorf("stats = %+v, want 2 reloads, 1 error, 1 entry", st)
	}
	// A removed file is an error too, and keeps the inventory.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Reload(); err == nil {
		t.Error("reload of a removed file: no error")
	}
	if got := ownerOf(cred(fpAlice, "")); got != "erin" {
		t.Errorf("owner after removal = %q, want erin", got)
	}
}

func TestReloadTicker(t *testing.T) {
	dir := t.TempDir()
	path := write(t, dir, "inv.csv", "user,owner\nbob,x\n")
	e, err := identity.New(identity.Config{File: path, ReloadInterval: time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(t.Context())
	write(t, dir, "inv.csv", "user,owner\nbob,y\nalice,z\n") // size differs
	deadline := time.Now().Add(10 * time.Second)
	for e.Stats().Entries != 2 {
		if time.Now().After(deadline) {
			t.Fatal("ticker never reloaded the changed file")
		}
		runtime.Gosched()
	}
}
