package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/trailwatch/trailwatch/detect"
	"github.com/trailwatch/trailwatch/detect/ruletest"
	"github.com/trailwatch/trailwatch/detect/sigma"
)

// errTestsFailed makes `rules test` exit 1 after printing its report.
var errTestsFailed = errors.New("rule tests failed")

func cmdRules(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return dispatch("rules", "<test|lint|import-sigma> [DIR|FILE…]", []subcommand{
		{"test", "load the rules and run every rule's inline tests (default dir: rules)", func(args []string) error { return rulesTest(args, stdout, stderr) }},
		{"lint", "load and type-check the rules without running them", func(args []string) error { return rulesLint(args, stdout, stderr) }},
		{"import-sigma", "convert Sigma rules (webserver, CloudTrail, correlations) into rule files", func(args []string) error { return rulesImportSigma(args, stdout, stderr) }},
	}, args, stdout, stderr)
}

// subcommand is one verb of a command with verbs (rules test, setup kibana).
type subcommand struct {
	name, help string
	run        func(args []string) error
}

// dispatch runs the subcommand args[0] names with the rest of args, or
// prints the usage: on stdout for -h/--help, on stderr (with errUsage) for
// a missing or unknown verb.
func dispatch(cmd, synopsis string, subs []subcommand, args []string, stdout, stderr io.Writer) error {
	usage := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: trailwatch %s %s\n\n", cmd, synopsis)
		for _, s := range subs {
			fmt.Fprintf(w, "  %-14s %s\n", s.name, s.help)
		}
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	for _, s := range subs {
		if s.name == args[0] {
			return s.run(args[1:])
		}
	}
	fmt.Fprintf(stderr, "trailwatch %s: unknown subcommand %q\n", cmd, args[0])
	usage(stderr)
	return errUsage
}

// loadRules loads the rule dirs or files named on the command line
// (default: rules/), all-or-nothing.
func loadRules(name, synopsis string, args []string, stdout, stderr io.Writer) (*detect.RuleSet, bool, error) {
	fs := newFlags(name, synopsis, stdout, stderr)
	verbose := fs.BoolP("verbose", "v", false, "list every test, not only failures")
	if err := parseFlags(fs, args); err != nil {
		return nil, false, err
	}
	paths := fs.Args()
	if len(paths) == 0 {
		paths = []string{"rules"}
	}
	rs, err := detect.LoadDir(paths...)
	if err != nil {
		return nil, false, err
	}
	return rs, *verbose, nil
}

func rulesLint(args []string, stdout, stderr io.Writer) error {
	rs, _, err := loadRules("rules lint [DIR|FILE…]", "Load and type-check rule files; report every problem with file:line:col.", args, stdout, stderr)
	if err != nil {
		return err
	}
	tests := 0
	for _, r := range rs.Rules() {
		tests += len(r.Tests)
	}
	fmt.Fprintf(stdout, "%d rules ok (%d tests not run)\n", rs.Len(), tests)
	return nil
}

func rulesTest(args []string, stdout, stderr io.Writer) error {
	rs, verbose, err := loadRules("rules test [DIR|FILE…]", "Run every rule's inline tests; print a want/got diff for each failure.", args, stdout, stderr)
	if err != nil {
		return err
	}
	results := ruletest.Run(rs)
	failed := 0
	for _, r := range results {
		if !r.Passed() {
			failed++
			fmt.Fprintln(stdout, r.String())
		} else if verbose {
			fmt.Fprintln(stdout, r.String())
		}
	}
	untested := 0
	for _, r := range rs.Rules() {
		if len(r.Tests) == 0 {
			untested++
		}
	}
	fmt.Fprintf(stdout, "%d rules, %d tests: %d passed, %d failed", rs.Len(), len(results), len(results)-failed, failed)
	if untested > 0 {
		fmt.Fprintf(stdout, " (%d rules without tests)", untested)
	}
	fmt.Fprintln(stdout)
	if failed > 0 {
		return errTestsFailed
	}
	return nil
}

func rulesImportSigma(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("rules import-sigma --out DIR FILE|DIR…",
		"Convert Sigma rules (category webserver, product aws/service cloudtrail, and\n"+
			"event_count/value_count correlations) into trailwatch rule files, one per rule.\n"+
			"A rule using anything that cannot be converted faithfully is not written; each\n"+
			"such construct is reported on stderr with the file, rule and reason.", stdout, stderr)
	out := fs.StringP("out", "o", "", "directory to write the converted rules to (required)")
	strict := fs.Bool("strict", false, "exit 1 if any rule could not be converted")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() == 0 {
		fmt.Fprintln(stderr, "trailwatch rules import-sigma: --out and at least one FILE or DIR are required")
		return errUsage
	}
	conv, problems := sigma.ConvertFiles(fs.Args()...)
	for _, p := range problems {
		fmt.Fprintln(stderr, p.String())
	}
	// Load what was converted before writing anything: a rule the engine
	// refuses is a converter bug, and nothing is half-imported.
	for _, c := range conv {
		if _, err := detect.Parse(c.ID+".yaml", c.YAML); err != nil {
			return fmt.Errorf("converted rule %s (from %s) does not load: %w", c.ID, c.File, err)
		}
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	for _, c := range conv {
		if err := os.WriteFile(filepath.Join(*out, c.ID+".yaml"), c.YAML, 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "converted %d rules into %s; %d problems\n", len(conv), *out, len(problems))
	if *strict && len(problems) > 0 {
		return errors.New("some rules could not be converted (see above)")
	}
	return nil
}
