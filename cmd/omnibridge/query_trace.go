package main

import (
	"fmt"
	"io"
	"strings"

	"connectrpc.com/connect"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/spf13/cobra"
)

func init() { register(newTraceCmd) }

func newTraceCmd() *cobra.Command {
	var q queryFlags
	cmd := &cobra.Command{
		Use:   "trace ID",
		Short: "Show the call tree of a trace or correlation id, its critical path and root cause",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := q.client()
			if err != nil {
				return err
			}
			res, err := c.GetTrace(cmd.Context(), connect.NewRequest(&bridgev1.GetTraceRequest{Id: args[0]}))
			if err != nil {
				return fmt.Errorf("get trace: %w", err)
			}
			out := cmd.OutOrStdout()
			if q.output == "json" {
				return writeJSON(out, res.Msg)
			}
			return printTrace(out, res.Msg)
		},
	}
	addQueryFlags(cmd, &q)
	return cmd
}

func printTrace(w io.Writer, t *bridgev1.GetTraceResponse) error {
	fmt.Fprintf(w, "trace %s", t.GetId())
	if t.GetSessionId() != "" {
		fmt.Fprintf(w, " (session %s)", t.GetSessionId())
	}
	fmt.Fprintln(w)
	tb := newTable(w, "SPAN", "START", "DURATION", "SELF", "STATUS", "NOTE")
	start := t.GetRoot().GetStart().AsTime()
	var walk func(s *bridgev1.TraceSpan, prefix string, last, root bool)
	walk = func(s *bridgev1.TraceSpan, prefix string, last, root bool) {
		branch, next := "", ""
		if !root {
			branch, next = "├─ ", "│  "
			if last {
				branch, next = "└─ ", "   "
			}
		}
		name := strings.TrimSpace(s.GetService() + " " + s.GetOperation())
		mark := ""
		if s.GetCritical() {
			mark = "*"
		}
		status := "ok"
		if !s.GetSuccess() {
			status = "FAILED " + s.GetStatus()
		}
		note := s.GetError()
		if s.GetSpanId() == t.GetRootCauseSpanId() && t.GetRootCauseSpanId() != "" {
			note = "<- root cause: " + note
		}
		tb.row(prefix+branch+mark+name, "+"+fmtMs(s.GetStart().AsTime().Sub(start)), fmtDur(s.GetDuration()), fmtDur(s.GetSelfTime()), strings.TrimSpace(status), note)
		for i, c := range s.GetChildren() {
			walk(c, prefix+next, i == len(s.GetChildren())-1, false)
		}
	}
	walk(t.GetRoot(), "", true, true)
	if err := tb.flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "(* on the critical path)")
	if t.GetRootCauseService() != "" {
		fmt.Fprintf(w, "root cause: %s\n  %s\n", t.GetRootCauseService(), t.GetRootCauseReason())
	}
	return nil
}
