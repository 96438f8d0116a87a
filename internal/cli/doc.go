// Package cli is the `earshot` command line: one subcommand per service, client and tool.
// Each subcommand parses its flags into a typed config and calls into the packages that
// do the work; nothing here holds logic of its own beyond presentation.
package cli
