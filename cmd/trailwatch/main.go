// Command trailwatch is the API access-auditing pipeline: one binary whose
// subcommands run the pipeline (run), parse logs offline (parse) and report
// the build (version). It is the only place that knows every stage: it maps
// configuration to components, starts them, and shuts them down in order.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error
}

var commands = []command{
	{"run", "run the pipeline (embedded broker and demo logs by default)", cmdRun},
	{"parse", "parse raw log lines from stdin into ECS JSON events on stdout", cmdParse},
	{"rules", "test and lint detection rules (rules test|lint [DIR…])", cmdRules},
	{"hunt", "run rules over raw log files in event time, without Kafka; alerts as NDJSON", cmdHunt},
	{"replay", "re-run normalize and rules over a time range of a Kafka topic, as a named run", cmdReplay},
	{"investigate", "one actor's timeline (requests, endpoints, IPs, outcomes, alerts) from the index", cmdInvestigate},
	{"setup", "install Elasticsearch templates and lifecycle, or import Kibana dashboards", cmdSetup},
	{"silences", "list, add and expire silences (silences list|add|expire)", cmdSilences},
	{"verify", "check the raw topic against its signed checkpoints (docs/integrity.md)", cmdVerify},
	{"version", "print the version", cmdVersion},
}

// errUsage marks a usage error: the message was printed with the usage.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signalContext()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// signalContext is cancelled by SIGINT or SIGTERM: the start of a clean
// shutdown.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// run dispatches args to a subcommand and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdin, stdout, stderr)
		switch {
		case err == nil, errors.Is(err, pflag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		}
		fmt.Fprintf(stderr, "trailwatch %s: %s\n", c.name, oneLine(err))
		return 1
	}
	fmt.Fprintf(stderr, "trailwatch: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "trailwatch — API access auditing: collect, normalize, detect, index, page.")
	fmt.Fprintln(w, "\nUsage: trailwatch <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for _, c := range commands {
		names = append(names, fmt.Sprintf("  %-9s %s", c.name, c.summary))
	}
	sort.Strings(names)
	fmt.Fprintln(w, strings.Join(names, "\n"))
	fmt.Fprintln(w, "\nRun 'trailwatch <command> --help' for a command's flags.")
}

// oneLine joins a multi-line error (errors.Join) with "; " so the failure
// is one line on stderr, each problem still named.
func oneLine(err error) string {
	lines := strings.Split(strings.TrimSpace(err.Error()), "\n")
	if len(lines) == 1 {
		return lines[0]
	}
	return strings.Join(lines, "\n  ")
}

// newFlags returns a flag set whose --help prints the command's usage.
func newFlags(name, synopsis string, stdout, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stdout, "Usage: trailwatch %s\n\n%s\n\nFlags:\n", name, synopsis)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(stderr)
	}
	return fs
}

// parseFlags parses args, mapping a bad flag to errUsage.
func parseFlags(fs *pflag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}
