package main

import (
	"fmt"
	"io"
	"time"

	"connectrpc.com/connect"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/spf13/cobra"
)

func init() { register(newTopCmd) }

func newTopCmd() *cobra.Command {
	var (
		q       queryFlags
		service string
		window  string
		limit   uint32
		watch   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "top",
		Short: "Show the live route table: rate, errors, latency percentiles, trend",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := q.client()
			if err != nil {
				return err
			}
			w, err := parseWindow(window)
			if err != nil {
				return err
			}
			for {
				res, err := c.ListRouteStats(cmd.Context(), connect.NewRequest(&bridgev1.ListRouteStatsRequest{Service: service, Window: w, Limit: limit}))
				if err != nil {
					return fmt.Errorf("list route stats: %w", err)
				}
				out := cmd.OutOrStdout()
				if watch > 0 && q.output == "table" {
					fmt.Fprint(out, "\x1b[H\x1b[2J")
				}
				if err := printTop(out, q.output, res.Msg); err != nil || watch <= 0 {
					return err
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(watch):
				}
			}
		},
	}
	addQueryFlags(cmd, &q)
	cmd.Flags().StringVar(&service, "service", "", "only routes of this service")
	cmd.Flags().StringVar(&window, "window", "5m", "window: 1m, 5m, 1h or baseline")
	cmd.Flags().Uint32Var(&limit, "limit", 50, "at most this many routes, busiest first")
	cmd.Flags().DurationVar(&watch, "watch", 0, "refresh at this interval until interrupted (0: once)")
	return cmd
}

func printTop(w io.Writer, format string, res *bridgev1.ListRouteStatsResponse) error {
	if format == "json" {
		return writeJSON(w, res)
	}
	t := newTable(w, "SERVICE", "ROUTE", "REQS", "RPS", "ERR", "P50", "P90", "P99", "VS_AVG", "TREND", "ANOMALY", "BOTTLENECK")
	for _, r := range res.GetRoutes() {
		anom := fmt.Sprintf("%.1f", r.GetAnomalyScore())
		if r.GetAnomalous() {
			anom += "!"
		}
		bn := "-"
		if b := r.GetBottlenecks(); len(b) > 0 {
			bn = fmt.Sprintf("%s %.0f%%", b[0].GetName(), 100*b[0].GetShare())
		}
		t.row(r.GetService(), r.GetRoute(), fmt.Sprint(r.GetRequests()), fmt.Sprintf("%.2f", r.GetRequestRate()), pct(r.GetErrorRate()),
			fmtDur(r.GetP50()), fmtDur(r.GetP90()), fmtDur(r.GetP99()), fmt.Sprintf("%.2fx", r.GetVsHistoricalAvg()), trendName(r.GetPerformanceTrend()), anom, bn)
	}
	return t.flush()
}
