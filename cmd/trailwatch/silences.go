package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/trailwatch/trailwatch/internal/silence"
)

// silenceStore is where the pipeline and this command keep silences.
func silenceStore(dataDir string) *silence.Store {
	return silence.Open(filepath.Join(dataDir, silence.FileName))
}

// cmdSilences lists, adds and expires silences in <data_dir>/silences.json.
func cmdSilences(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("silences [list|add|expire ID] [-c FILE]",
		"Manage silences: an active silence stops paging (Slack, webhooks, console) for\n"+
			"a rule's alerts, or one group of them; the alerts are still indexed. Silences\n"+
			"live in <data_dir>/silences.json, shared with the running pipeline and the\n"+
			"Slack Silence buttons.\n\n"+
			"  trailwatch silences list [--all] [--json]\n"+
			"  trailwatch silences add --rule ID [--key 'source.ip=1.2.3.4'] --for 2h --reason TEXT\n"+
			"  trailwatch silences expire ID", stdout, stderr)
	cfgPath := fs.StringP("config", "c", "", "YAML configuration file")
	dataDir := fs.String("data-dir", "", "data directory (default: the config's)")
	asJSON := fs.Bool("json", false, "list as JSON")
	all := fs.Bool("all", false, "list ended silences too")
	rule := fs.String("rule", "", "add: the rule id silenced")
	key := fs.String("key", "", "add: the group key silenced, as name=value[,name=value] sorted by name (default: every group)")
	dur := fs.Duration("for", time.Hour, "add: how long the silence lasts")
	reason := fs.String("reason", "", "add: why")
	by := fs.String("by", "cli", "add: who sets it")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	overrides := map[string]any{}
	if *dataDir != "" {
		overrides["data_dir"] = *dataDir
	}
	cfg, err := loadConfig(*cfgPath, nil, overrides)
	if err != nil {
		return err
	}
	store := silenceStore(cfg.DataDir)
	now := time.Now().UTC()
	verb, rest := "list", fs.Args()
	if len(rest) > 0 {
		verb, rest = rest[0], rest[1:]
	}
	switch verb {
	case "list":
		list, err := store.List()
		if err != nil {
			return err
		}
		if !*all {
			active := list[:0]
			for _, s := range list {
				if now.Before(s.Until) {
					active = append(active, s)
				}
			}
			list = active
		}
		return printSilences(stdout, list, now, *asJSON)
	case "add":
		if *rule == "" {
			fmt.Fprintln(stderr, "trailwatch silences add: --rule is required")
			return errUsage
		}
		s, err := store.Add(silence.Silence{Rule: *rule, Key: *key, Until: now.Add(*dur), By: *by, Reason: *reason}, now)
		if err != nil {
			return err
		}
		return printSilences(stdout, []silence.Silence{s}, now, *asJSON)
	case "expire":
		if len(rest) != 1 {
			fmt.Fprintln(stderr, "trailwatch silences expire: one silence ID")
			return errUsage
		}
		if err := store.Expire(rest[0], now); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "expired %s\n", rest[0])
		return nil
	}
	fmt.Fprintf(stderr, "trailwatch silences: unknown action %q (list, add, expire)\n", verb)
	return errUsage
}

func printSilences(w io.Writer, list []silence.Silence, now time.Time, asJSON bool) error {
	if asJSON {
		if list == nil {
			list = []silence.Silence{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRULE\tKEY\tUNTIL\tSTATE\tBY\tREASON")
	for _, s := range list {
		state := "active"
		if !s.Active(now) {
			state = "ended"
		}
		key := s.Key
		if key == "" {
			key = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Rule, key, s.Until.UTC().Format(time.RFC3339), state, s.By, strings.ReplaceAll(s.Reason, "\t", " "))
	}
	if err := tw.Flush(); err != nil {
		return errors.New("silences: " + err.Error())
	}
	return nil
}
