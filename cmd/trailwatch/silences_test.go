package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/trailwatch/trailwatch/internal/silence"
)

func TestSilencesCommand(t *testing.T) {
	dir := t.TempDir()
	sh := func(args ...string) (string, int) {
		t.Helper()
		var out, errb bytes.Buffer
		code := run(t.Context(), append([]string{"silences", "--data-dir", dir}, args...), nil, &out, &errb)
		return out.String() + errb.String(), code
	}
	if out, code := sh("add", "--rule", "auth-bruteforce", "--key", "source.ip=203.0.113.9", "--for", "2h", "--reason", "pen test"); code != 0 || !strings.Contains(out, "auth-bruteforce") {
		t.Fatalf("add: %d %s", code, out)
	}
	out, code := sh("list", "--json")
	var list []silence.Silence
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0].Reason != "pen test" {
		t.Fatalf("list --json: %d %s", code, out)
	}
	if out, code := sh("list"); code != 0 || !strings.Contains(out, "ID") || !strings.Contains(out, list[0].ID) || !strings.Contains(out, "active") {
		t.Fatalf("list table: %d %s", code, out)
	}
	if out, code := sh("expire", list[0].ID); code != 0 {
		t.Fatalf("expire: %d %s", code, out)
	}
	if out, _ := sh("list", "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("active silences after expire: %s", out)
	}
	if out, _ := sh("list", "--all"); !strings.Contains(out, "ended") {
		t.Errorf("list --all lacks the ended silence: %s", out)
	}
	if _, code := sh("add"); code != 2 {
		t.Errorf("add without --rule: exit %d, want 2", code)
	}
	if _, code := sh("expire", "nope"); code != 1 {
		t.Errorf("expire unknown: exit %d, want 1", code)
	}
}
