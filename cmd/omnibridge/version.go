package main

import (
	"fmt"
	"runtime"

	"github.com/omninode/bridge/internal/buildinfo"
	"github.com/spf13/cobra"
)

func init() { register(newVersionCmd) }

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of this build",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "omnibridge %s (%s, %s/%s)\n",
				buildinfo.String(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}
