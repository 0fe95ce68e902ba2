package demo

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// maxHooksInFlight bounds concurrent hook posts; beyond it reports are dropped
// (and counted) so a slow sidecar never slows the service.
const maxHooksInFlight = 32

// hookReporter posts execution hooks to the service's own sidecar, off the
// request path.
type hookReporter struct {
	url     string // {HooksURL}/v1/hooks/execution; empty disables
	client  *http.Client
	log     *slog.Logger
	sem     chan struct{}
	wg      sync.WaitGroup
	sent    atomic.Uint64
	failed  atomic.Uint64
	dropped atomic.Uint64
}

func newHookReporter(base string, log *slog.Logger) *hookReporter {
	h := &hookReporter{client: &http.Client{Timeout: 2 * time.Second}, log: log, sem: make(chan struct{}, maxHooksInFlight)}
	if base != "" {
		h.url = strings.TrimRight(base, "/") + "/v1/hooks/execution"
	}
	return h
}

// execution describes one finished operation.
type execution struct {
	operation string
	params    map[string]any
	output    map[string]any
	err       error
	errCode   string
	started   time.Time
	elapsed   time.Duration
}

// report sends the hook asynchronously.
func (h *hookReporter) report(m callMeta, e execution) {
	if h.url == "" {
		return
	}
	req := &bridgev1.ReportExecutionRequest{
		CorrelationId: m.correlationID,
		PreContext: &bridgev1.ExecutionPreContext{
			SessionId: m.sessionID,
			Operation: e.operation,
			Timestamp: timestamppb.New(e.started),
		},
		Results: &bridgev1.ExecutionOutcome{
			Success:       e.err == nil,
			ExecutionTime: durationpb.New(e.elapsed),
			ErrorCode:     e.errCode,
		},
	}
	if p, err := structpb.NewStruct(e.params); err == nil && len(e.params) > 0 {
		req.PreContext.Parameters = p
	}
	if o, err := structpb.NewStruct(e.output); err == nil && len(e.output) > 0 {
		req.Results.Output = o
	}
	if e.err != nil {
		req.Results.Error = e.err.Error()
	}
	body, err := protojson.Marshal(req)
	if err != nil {
		h.failed.Add(1)
		return
	}
	select {
	case h.sem <- struct{}{}:
	default:
		h.dropped.Add(1)
		return
	}
	h.wg.Go(func() {
		defer func() { <-h.sem }()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		r, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
		if err != nil {
			h.failed.Add(1)
			return
		}
		r.Header.Set("Content-Type", "application/json")
		m.apply(r.Header)
		resp, err := h.client.Do(r)
		if err != nil {
			h.failed.Add(1)
			h.log.Debug("report hook", "err", err)
			return
		}
		_ = resp.Body.Close()
		if resp.StatusCode >= 300 {
			h.failed.Add(1)
			h.log.Debug("report hook", "status", resp.StatusCode)
			return
		}
		h.sent.Add(1)
	})
}

// wait blocks until every in-flight hook post ends.
func (h *hookReporter) wait() { h.wg.Wait() }
