package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/gen/omninode/bridge/v1/bridgev1connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// queryFlags are the flags every query command shares.
type queryFlags struct {
	server string
	token  string
	output string
}

func addQueryFlags(cmd *cobra.Command, q *queryFlags) {
	cmd.Flags().StringVar(&q.server, "server", "http://127.0.0.1:8080", "control plane URL")
	cmd.Flags().StringVar(&q.token, "token", "", "bearer token for the control plane (optional)")
	cmd.Flags().StringVarP(&q.output, "output", "o", "table", "output format: table or json")
}

func (q *queryFlags) validate() error {
	if q.output != "table" && q.output != "json" {
		return fmt.Errorf("invalid --output %q: want table or json", q.output)
	}
	if !strings.HasPrefix(q.server, "http://") && !strings.HasPrefix(q.server, "https://") {
		return fmt.Errorf("invalid --server %q: want an http:// or https:// URL", q.server)
	}
	return nil
}

// bearer adds the Authorization header to every call.
type bearer string

func (b bearer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		req.Header().Set("Authorization", "Bearer "+string(b))
		return next(ctx, req)
	}
}

func (b bearer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		conn.RequestHeader().Set("Authorization", "Bearer "+string(b))
		return conn
	}
}

func (b bearer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

func (q *queryFlags) client() (bridgev1connect.IntelligenceServiceClient, error) {
	if err := q.validate(); err != nil {
		return nil, err
	}
	var opts []connect.ClientOption
	if q.token != "" {
		opts = append(opts, connect.WithInterceptors(bearer(q.token)))
	}
	return bridgev1connect.NewIntelligenceServiceClient(http.DefaultClient, strings.TrimRight(q.server, "/"), opts...), nil
}

// writeJSON prints a message as indented JSON with stable spacing.
func writeJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		return fmt.Errorf("indent json: %w", err)
	}
	buf.WriteByte('\n')
	_, err = w.Write(buf.Bytes())
	return err
}

// table is a tab-aligned table.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cols ...string) { fmt.Fprintln(t.tw, strings.Join(cols, "\t")) }

func (t *table) flush() error { return t.tw.Flush() }

func fmtDur(d *durationpb.Duration) string {
	if d == nil {
		return "-"
	}
	return fmtMs(d.AsDuration())
}

func fmtMs(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case ms >= 1000:
		return fmt.Sprintf("%.2fs", ms/1000)
	case ms >= 10:
		return fmt.Sprintf("%.0fms", ms)
	default:
		return fmt.Sprintf("%.1fms", ms)
	}
}

func pct(x float64) string { return fmt.Sprintf("%.1f%%", 100*x) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func joinOr(xs []string) string { return orDash(strings.Join(xs, ",")) }

var windows = map[string]bridgev1.Window{"1m": bridgev1.Window_WINDOW_1M, "5m": bridgev1.Window_WINDOW_5M, "1h": bridgev1.Window_WINDOW_1H, "baseline": bridgev1.Window_WINDOW_BASELINE}

func parseWindow(s string) (bridgev1.Window, error) {
	w, ok := windows[s]
	if !ok {
		return 0, fmt.Errorf("invalid --window %q: want 1m, 5m, 1h or baseline", s)
	}
	return w, nil
}

func trendName(t bridgev1.PerformanceTrend) string {
	switch t {
	case bridgev1.PerformanceTrend_PERFORMANCE_TREND_IMPROVING:
		return "improving"
	case bridgev1.PerformanceTrend_PERFORMANCE_TREND_STABLE:
		return "stable"
	case bridgev1.PerformanceTrend_PERFORMANCE_TREND_DEGRADING:
		return "DEGRADING"
	}
	return "-"
}

func healthName(h bridgev1.HealthStatus) string {
	return strings.ToLower(strings.TrimPrefix(h.String(), "HEALTH_STATUS_"))
}

// jsonLine encodes a message as one line of JSON with stable spacing.
func jsonLine(m proto.Message) (string, error) {
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encode json: %w", err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return "", fmt.Errorf("compact json: %w", err)
	}
	return buf.String(), nil
}
