// Command earshot is Earshot's one binary: every service, the CLI clients and the tools.
package main

import (
	"context"
	"os"

	"github.com/earshot-dev/earshot/internal/cli"
)

func main() {
	cli.PassiveOpenMP()
	os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
