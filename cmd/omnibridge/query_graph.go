package main

import (
	"fmt"
	"io"
	"strings"

	"connectrpc.com/connect"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/spf13/cobra"
)

func init() { register(newGraphCmd) }

func newGraphCmd() *cobra.Command {
	var (
		q      queryFlags
		window string
		format string
	)
	cmd := &cobra.Command{
		Use:   "graph",
		Short: "Show the service dependency graph (text, DOT or Mermaid)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "text" && format != "dot" && format != "mermaid" {
				return fmt.Errorf("invalid --format %q: want text, dot or mermaid", format)
			}
			c, err := q.client()
			if err != nil {
				return err
			}
			w, err := parseWindow(window)
			if err != nil {
				return err
			}
			res, err := c.GetServiceGraph(cmd.Context(), connect.NewRequest(&bridgev1.GetServiceGraphRequest{Window: w}))
			if err != nil {
				return fmt.Errorf("get service graph: %w", err)
			}
			out := cmd.OutOrStdout()
			switch {
			case q.output == "json":
				return writeJSON(out, res.Msg)
			case format == "dot":
				return printDOT(out, res.Msg)
			case format == "mermaid":
				return printMermaid(out, res.Msg)
			}
			return printGraphText(out, res.Msg)
		},
	}
	addQueryFlags(cmd, &q)
	cmd.Flags().StringVar(&window, "window", "5m", "window of the edge figures: 1m, 5m, 1h or baseline")
	cmd.Flags().StringVar(&format, "format", "text", "graph format: text, dot or mermaid")
	return cmd
}

func edgeLabel(e *bridgev1.GraphEdge) string {
	return fmt.Sprintf("%.2f rps, %s err, p99 %s", e.GetRequestRate(), pct(e.GetErrorRate()), fmtDur(e.GetP99()))
}

func printGraphText(w io.Writer, g *bridgev1.GetServiceGraphResponse) error {
	t := newTable(w, "SOURCE", "", "TARGET", "REQS", "RPS", "ERR", "P50", "P99")
	for _, e := range g.GetEdges() {
		t.row(e.GetSource(), "->", e.GetTarget(), fmt.Sprint(e.GetRequests()), fmt.Sprintf("%.2f", e.GetRequestRate()), pct(e.GetErrorRate()), fmtDur(e.GetP50()), fmtDur(e.GetP99()))
	}
	if err := t.flush(); err != nil {
		return err
	}
	if hs := g.GetCausalHints(); len(hs) > 0 {
		fmt.Fprintln(w, "\nCausal hints:")
		for _, h := range hs {
			fmt.Fprintf(w, "  %s <- %s (confidence %.2f): %s\n", h.GetEffectService(), h.GetCauseService(), h.GetConfidence(), h.GetEvidence())
		}
	}
	if im := g.GetImpact(); im != nil {
		fmt.Fprintf(w, "\nLatest impact analysis (%s): capability expansion %.2f, dependency complexity %.2f edges/service, load share %s, redundant capabilities %s\n",
			im.GetService(), im.GetCapabilityExpansion(), im.GetDependencyComplexity(), pct(im.GetLoadDistributionImpact()), joinOr(im.GetRedundantCapabilities()))
	}
	return nil
}

func printDOT(w io.Writer, g *bridgev1.GetServiceGraphResponse) error {
	var b strings.Builder
	b.WriteString("digraph omnibridge {\n  rankdir=LR;\n  node [shape=box];\n")
	for _, s := range g.GetServices() {
		fmt.Fprintf(&b, "  %q [label=%q];\n", s.GetName(), s.GetName()+"\\n"+healthName(s.GetHealth()))
	}
	for _, e := range g.GetEdges() {
		color := "black"
		if e.GetErrorRate() >= 0.05 {
			color = "red"
		}
		fmt.Fprintf(&b, "  %q -> %q [label=%q, color=%s];\n", e.GetSource(), e.GetTarget(), edgeLabel(e), color)
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func mermaidID(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteRune('_')
		}
	}
	return b.String()
}

func printMermaid(w io.Writer, g *bridgev1.GetServiceGraphResponse) error {
	var b strings.Builder
	b.WriteString("graph LR\n")
	seen := map[string]bool{}
	node := func(n string) {
		if !seen[n] {
			seen[n] = true
			fmt.Fprintf(&b, "  %s[\"%s\"]\n", mermaidID(n), n)
		}
	}
	for _, s := range g.GetServices() {
		node(s.GetName())
	}
	for _, e := range g.GetEdges() {
		node(e.GetSource())
		node(e.GetTarget())
		fmt.Fprintf(&b, "  %s -->|\"%s\"| %s\n", mermaidID(e.GetSource()), edgeLabel(e), mermaidID(e.GetTarget()))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
