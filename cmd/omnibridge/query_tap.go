package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"connectrpc.com/connect"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/spf13/cobra"
)

func init() { register(newTapCmd) }

func newTapCmd() *cobra.Command {
	var (
		q     queryFlags
		req   bridgev1.TapRequest
		count int
	)
	cmd := &cobra.Command{
		Use:   "tap",
		Short: "Stream live events, filtered by service, topic, route prefix or failures",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := q.client()
			if err != nil {
				return err
			}
			stream, err := c.Tap(cmd.Context(), connect.NewRequest(&req))
			if err != nil {
				return fmt.Errorf("open tap: %w", err)
			}
			defer stream.Close()
			out := cmd.OutOrStdout()
			n := 0
			for stream.Receive() {
				if err := printTapEvent(out, q.output, stream.Msg()); err != nil {
					return err
				}
				n++
				if count > 0 && n >= count {
					return nil
				}
			}
			if err := stream.Err(); err != nil && cmd.Context().Err() == nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("tap: %w", err)
			}
			return nil
		},
	}
	addQueryFlags(cmd, &q)
	cmd.Flags().StringVar(&req.Service, "service", "", "only events of this service (source or target)")
	cmd.Flags().StringSliceVar(&req.Topics, "topic", nil, "only events on these topics (repeatable)")
	cmd.Flags().BoolVar(&req.ErrorsOnly, "errors-only", false, "only failures")
	cmd.Flags().StringVar(&req.RoutePrefix, "route-prefix", "", "only events whose route (or operation, tool) starts with this")
	cmd.Flags().IntVar(&count, "count", 0, "exit after this many events (0: until interrupted)")
	return cmd
}

func printTapEvent(w io.Writer, format string, m *bridgev1.TapResponse) error {
	if format == "json" {
		b, err := jsonLine(m)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, b)
		return err
	}
	if d := m.GetDroppedBefore(); d > 0 {
		fmt.Fprintf(w, "... %d events dropped (client too slow)\n", d)
	}
	var at time.Time
	var topic, what string
	switch {
	case m.GetCommunication() != nil:
		e := m.GetCommunication()
		at, topic = e.GetEnvelope().GetOccurredAt().AsTime(), "comm"
		pm := e.GetPerformanceMetrics()
		status := fmt.Sprint(pm.GetStatusCode())
		if !pm.GetSuccess() {
			status += " FAILED"
		}
		what = fmt.Sprintf("%s -> %s %s %s %s %s", orDash(e.GetRequestContext().GetSourceService()), pm.GetTargetService(),
			e.GetRequestContext().GetMethod(), e.GetRequestContext().GetRoute(), status, fmtDur(pm.GetResponseTime()))
	case m.GetExecution() != nil:
		e := m.GetExecution()
		at, topic = e.GetEnvelope().GetOccurredAt().AsTime(), "exec"
		op := e.GetPreContext().GetOperation()
		if t := e.GetMcp().GetToolName(); t != "" {
			op = "tool " + t
		}
		status := "ok"
		if !e.GetResults().GetSuccess() || e.GetMcp().GetToolError() {
			status = "FAILED " + e.GetResults().GetError()
		}
		what = fmt.Sprintf("%s %s %s %s", e.GetPreContext().GetServiceName(), op, fmtDur(e.GetResults().GetExecutionTime()), status)
	case m.GetLifecycle() != nil:
		e := m.GetLifecycle()
		at, topic = e.GetEnvelope().GetOccurredAt().AsTime(), "life"
		what = fmt.Sprintf("%s %s %s", e.GetServiceInfo().GetName(), strings.ToLower(strings.TrimPrefix(e.GetEventType().String(), "LIFECYCLE_EVENT_TYPE_")), healthName(e.GetHealth()))
	case m.GetTool() != nil:
		e := m.GetTool()
		at, topic = e.GetEnvelope().GetOccurredAt().AsTime(), "tool"
		what = fmt.Sprintf("%s/%s %s", e.GetToolInfo().GetServiceSource(), e.GetToolInfo().GetName(), strings.ToLower(strings.TrimPrefix(e.GetEventType().String(), "TOOL_EVENT_TYPE_")))
	}
	_, err := fmt.Fprintf(w, "%s %-4s %s\n", at.UTC().Format("15:04:05.000"), topic, what)
	return err
}
