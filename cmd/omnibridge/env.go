package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// envName returns the environment variable for a flag: --spool-dir -> OMNIBRIDGE_SPOOL_DIR.
func envName(flag string) string {
	return "OMNIBRIDGE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// bindEnvRecursive makes every flag of every command readable from its
// OMNIBRIDGE_* variable, applied before the command runs, for flags not set
// on the command line. Each flag's usage text names its variable.
func bindEnvRecursive(cmd *cobra.Command) {
	annotate := func(f *pflag.Flag) {
		if f.Name == "help" || strings.Contains(f.Usage, "env OMNIBRIDGE_") {
			return
		}
		f.Usage += fmt.Sprintf(" (env %s)", envName(f.Name))
	}
	cmd.Flags().VisitAll(annotate)
	cmd.PersistentFlags().VisitAll(annotate)
	prev := cmd.PreRunE
	cmd.PreRunE = func(c *cobra.Command, args []string) error {
		var err error
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if err != nil || f.Changed || f.Name == "help" {
				return
			}
			if v, ok := os.LookupEnv(envName(f.Name)); ok {
				if e := c.Flags().Set(f.Name, v); e != nil {
					err = fmt.Errorf("environment %s=%q: %w", envName(f.Name), v, e)
				}
			}
		})
		if err != nil {
			return err
		}
		if prev != nil {
			return prev(c, args)
		}
		return nil
	}
	for _, sub := range cmd.Commands() {
		bindEnvRecursive(sub)
	}
}
