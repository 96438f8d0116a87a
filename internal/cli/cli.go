package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Version is set at build time with -ldflags "-X .../internal/cli.Version=...".
var Version = "dev"

// env is what every subcommand gets.
type env struct {
	stdout, stderr io.Writer
	environ        []string
}

type command struct {
	name    string
	summary string
	usage   string // text after the synopsis in --help
	run     func(ctx context.Context, e *env, args []string) error
}

var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

// errUsage marks an error already explained to the user with usage text.
var errUsage = errors.New("usage")

// Main runs the CLI and returns the process exit status.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr, environ: os.Environ()}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				return exit(e, c.run(ctx, e, []string{"--help"}))
			}
		}
		topHelp(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "earshot: unknown command %q\n\n", args[0])
		topHelp(stderr)
		return 2
	}
	return exit(e, c.run(ctx, e, args[1:]))
}

func exit(e *env, err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.Is(err, context.Canceled):
		return 130
	default:
		fmt.Fprintf(e.stderr, "earshot: %v\n", err)
		return 1
	}
}

func topHelp(w io.Writer) {
	fmt.Fprintf(w, "earshot %s: self-hosted real-time speech-to-text\n\nUsage: earshot <command> [flags]\n\nCommands:\n", Version)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "\nRun 'earshot <command> --help' for the flags of one command.\n")
}

// newFlags returns a flag set whose --help prints the command's synopsis, usage text and
// flags to stdout.
func newFlags(e *env, c *command, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		w := e.stdout
		fmt.Fprintf(w, "Usage: earshot %s %s\n\n%s\n", c.name, synopsis, c.summary)
		if c.usage != "" {
			fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.usage))
		}
		fmt.Fprintf(w, "\nFlags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(e.stderr)
	}
	return fs
}

// parse parses args, mapping flag errors to errUsage (the flag package already printed them).
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}

// parseSub splits "SUB [flags and args]" for commands with subcommands: it prints the
// usage for no arguments (errUsage) or for -h/--help (flag.ErrHelp), else parses the
// flags, which may stand before or after the positional arguments.
func parseSub(fs *flag.FlagSet, args []string) (string, error) {
	if len(args) == 0 {
		fs.Usage()
		return "", errUsage
	}
	if args[0] == "-h" || args[0] == "--help" {
		fs.Usage()
		return "", flag.ErrHelp
	}
	return args[0], parse(fs, interleave(args[1:]))
}

func init() {
	register(&command{
		name:    "version",
		summary: "print the version of earshot and of whisper.cpp",
		run: func(ctx context.Context, e *env, args []string) error {
			c := commands["version"]
			fs := newFlags(e, c, "")
			if err := parse(fs, args); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "earshot %s (whisper.cpp %s)\n", Version, whisperVersion())
			return nil
		},
	})
}
