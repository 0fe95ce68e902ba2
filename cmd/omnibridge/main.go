// Command omnibridge is the one binary of OmniNode Bridge: the sidecar, the
// control plane, the embedded broker, the dev environment, the injector and
// the query CLI, as subcommands. main stays thin: it parses flags and
// environment, builds the logger, and runs a package's Run(ctx) under a
// signal context. Only main exits the process.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// subcommands are registered by each subcommand's file in its init function,
// so that adding a subcommand touches only its own file.
var subcommands []func() *cobra.Command

func register(f func() *cobra.Command) { subcommands = append(subcommands, f) }

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "omnibridge",
		Short: "OmniNode Bridge: a self-optimizing service mesh",
		Long: `OmniNode Bridge: a sidecar next to every service, a control plane that learns
from the sidecars' intelligence events and streams optimization directives back.

Every flag can also be set with an environment variable: OMNIBRIDGE_ followed by
the flag name in upper case with dashes as underscores (--spool-dir ->
OMNIBRIDGE_SPOOL_DIR). A flag given on the command line wins.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, f := range subcommands {
		root.AddCommand(f())
	}
	bindEnvRecursive(root)
	return root
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprintln(os.Stderr, "omnibridge:", ee.msg)
			}
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "omnibridge:", err)
		os.Exit(1)
	}
}

// exitError makes main exit with a given code (for commands like check that
// report failure through their exit status).
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return fmt.Sprintf("exit %d: %s", e.code, e.msg) }
