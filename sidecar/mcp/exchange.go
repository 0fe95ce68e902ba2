package mcp

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// payload is one complete JSON-RPC payload seen in an exchange.
type payload struct {
	dir  string // dirRequest or dirResponse
	data []byte
	at   time.Time // when its last byte passed
}

// exchange is one watched HTTP exchange. The request path only sends
// payloads (never blocking); a decoder goroutine, started with the first
// payload, owns everything else.
type exchange struct {
	c       *Capture
	start   time.Time
	session string
	trace   *bridgev1.TraceContext
	// rpc is set when the request body was JSON-RPC; only then is a JSON
	// answer copied.
	rpc atomic.Bool

	mu      sync.Mutex // guards ch, started, closed, status
	ch      chan payload
	started bool
	closed  bool
	status  int

	// Owned by the decoder goroutine.
	calls map[string]*call    // tools/call requests by id
	lists map[string]listCall // tools/list requests by id
}

type call struct {
	id   *Message
	name string
	args json.RawMessage
}

type listCall struct{ paged bool }

func (c *Capture) newExchange(r *http.Request) *exchange {
	return &exchange{
		c:       c,
		start:   c.cfg.Now(),
		session: r.Header.Get("Mcp-Session-Id"),
		trace:   traceFrom(r.Header),
		calls:   map[string]*call{},
		lists:   map[string]listCall{},
	}
}

func (ex *exchange) setStatus(code int) {
	ex.mu.Lock()
	ex.status = code
	ex.mu.Unlock()
}

// send queues a payload for decoding without blocking; when the decoder
// lags too far behind, the payload is dropped and counted.
func (ex *exchange) send(p payload) {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if ex.closed {
		return
	}
	if !ex.started {
		ex.started = true
		ex.ch = make(chan payload, queueSize)
		ex.c.wg.Add(1)
		go ex.run()
	}
	select {
	case ex.ch <- p:
	default:
		ex.c.m.dropped.WithLabelValues(dropQueueFull).Inc()
	}
}

// close ends the exchange: the decoder finishes what is queued, then
// reports the tools/calls that got no answer.
func (ex *exchange) close() {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if ex.closed {
		return
	}
	ex.closed = true
	if ex.started {
		close(ex.ch)
	}
}

func (ex *exchange) run() {
	defer ex.c.wg.Done()
	for p := range ex.ch {
		ex.handle(p)
	}
	ex.mu.Lock()
	status := ex.status
	ex.mu.Unlock()
	for _, cl := range ex.calls {
		reason := "no response"
		if status != 0 {
			reason = "no response (HTTP " + strconv.Itoa(status) + ")"
		}
		ex.emitCall(cl, nil, ex.c.cfg.Now(), reason)
	}
}

func (ex *exchange) handle(p payload) {
	m := ex.c.m
	msgs, err := decodePayload(p.data)
	if err != nil {
		m.dropped.WithLabelValues(dropParseError).Inc()
		reason := "malformed"
		if errors.Is(err, ErrNotJSONRPC) {
			reason = "not_jsonrpc"
		}
		// The decoder's message may quote the payload; log the reason only.
		ex.c.cfg.Logger.Debug("mcp payload not captured", "direction", p.dir, "reason", reason)
	}
	for i := range msgs {
		msg := &msgs[i]
		m.messages.WithLabelValues(p.dir, kindLabel(msg.Kind())).Inc()
		switch {
		case p.dir == dirRequest && msg.Kind() == KindRequest:
			ex.onRequest(msg)
		case p.dir == dirResponse && msg.Kind() == KindResponse:
			ex.onResponse(msg, p.at)
		case p.dir == dirResponse && msg.Kind() == KindNotification && msg.Method == "notifications/tools/list_changed":
			ex.c.reg.markStale()
		}
	}
}

func (ex *exchange) onRequest(msg *Message) {
	switch msg.Method {
	case "tools/call":
		var params struct {
			Name      string          `json:"name"`
			Arguments json.RawMessage `json:"arguments"`
		}
		if err := json.Unmarshal(msg.Params, &params); err != nil || params.Name == "" {
			ex.c.m.dropped.WithLabelValues(dropParseError).Inc()
			return
		}
		ex.calls[msg.IDKey()] = &call{id: msg, name: params.Name, args: params.Arguments}
	case "tools/list":
		var params struct {
			Cursor *string `json:"cursor"`
		}
		_ = json.Unmarshal(msg.Params, &params) // absent params are fine
		ex.lists[msg.IDKey()] = listCall{paged: params.Cursor != nil && *params.Cursor != ""}
	}
}

func (ex *exchange) onResponse(msg *Message, at time.Time) {
	key := msg.IDKey()
	if cl, ok := ex.calls[key]; ok {
		delete(ex.calls, key)
		ex.emitCall(cl, msg, at, "")
		return
	}
	if l, ok := ex.lists[key]; ok {
		delete(ex.lists, key)
		if msg.Error == nil {
			ex.c.reg.onList(msg.Result, l.paged, ex.trace)
		}
	}
}

// emitCall builds the execution event of one tools/call. resp is nil when
// no answer came; noResponse then says why.
func (ex *exchange) emitCall(cl *call, resp *Message, at time.Time, noResponse string) {
	c := ex.c
	red := c.red
	mcpCall := &bridgev1.McpToolCall{
		ToolName:      red.String(cl.name),
		ArgumentBytes: int64(len(cl.args)),
		SessionId:     red.String(ex.session),
		RequestId:     red.String(cl.id.IDText()),
	}
	results := &bridgev1.ExecutionResults{ExecutionTime: durationpb.New(max(at.Sub(ex.start), 0))}
	outcome := outcomeOK
	switch {
	case resp == nil:
		outcome = outcomeNoResponse
		results.Error, results.ErrorCode = noResponse, "no_response"
	case resp.Error != nil:
		outcome = outcomeRPCError
		mcpCall.JsonrpcErrorCode = int32(max(min(resp.Error.Code, 1<<31-1), -1<<31))
		results.Error = red.Error(resp.Error.Message)
		results.ErrorCode = strconv.FormatInt(resp.Error.Code, 10)
	default:
		var res struct {
			IsError bool `json:"isError"`
			Content []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"content"`
		}
		_ = json.Unmarshal(resp.Result, &res) // a malformed result is still an answer
		if res.IsError {
			outcome = outcomeToolError
			mcpCall.ToolError = true
			results.ErrorCode = "tool_error"
			for _, ct := range res.Content {
				if ct.Type == "text" && ct.Text != "" {
					results.Error = red.Error(ct.Text)
					break
				}
			}
		}
	}
	results.Success = outcome == outcomeOK
	c.m.calls.WithLabelValues(outcome).Inc()

	pre := &bridgev1.PreContext{
		ServiceName: c.cfg.Service,
		Operation:   mcpCall.ToolName,
		Timestamp:   timestamppb.New(ex.start),
	}
	if len(cl.args) > 0 {
		if s, err := red.JSONStruct(cl.args); err == nil {
			pre.Parameters = s
		}
	}
	corr := ex.trace.GetTraceId()
	if corr == "" {
		corr = uuid.NewString()
	}
	ev := &bridgev1.ExecutionIntelligenceEvent{
		Envelope:      c.src.Draft(at, ex.trace),
		EventType:     bridgev1.ExecutionEventType_EXECUTION_EVENT_TYPE_EXECUTION_COMPLETED,
		CorrelationId: corr,
		PreContext:    pre,
		Results:       results,
		Kind:          bridgev1.ExecutionKind_EXECUTION_KIND_MCP_TOOL_CALL,
		Mcp:           mcpCall,
	}
	if err := c.src.Seal(ev); err != nil {
		c.cfg.Logger.Warn("mcp tool call event invalid", "error", err)
		return
	}
	c.sink.Emit(ev)
}
