package mcp

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestPassThroughStreaming checks that an event stream passes byte for
// byte and is not held up: the upstream sends the tools/call answer, then
// waits until the client has read it before it ends the stream; the event
// for the call is emitted while the stream is still open.
func TestPassThroughStreaming(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	first := "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\r\n\r\n" +
		"event: message\ndata: [{\"jsonrpc\":\"2.0\",\"id\":\"c1\",\"result\":{\"content\":[],\"isError\":false}}]\n\n"
	rest := ": keep-alive\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":\"c2\",\"error\":{\"code\":-32000,\"message\":\"token=abc123 expired\"}}\n\n"
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !strings.Contains(string(body), `"tools/call"`) {
			http.Error(w, "unexpected body", 400)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Mcp-Session-Id", "sess-1")
		_, _ = io.WriteString(w, first)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		_, _ = io.WriteString(w, rest)
	})
	e := newEnv(t, upstream, nil)
	reqBody := `[{"jsonrpc":"2.0","id":"c1","method":"tools/call","params":{"name":"search","arguments":{"q":"x","api_key":"k"}}},` +
		`{"jsonrpc":"2.0","id":"c2","method":"tools/call","params":{"name":"fetch"}}]`
	req, _ := http.NewRequest(http.MethodPost, e.front.URL+"/mcp", strings.NewReader(reqBody))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Mcp-Session-Id", "sess-1")
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	resp, err := e.front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	got := make([]byte, len(first))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != first {
		t.Fatalf("first part: %q %v", got, err)
	}
	// The first answer was captured while the stream is still open.
	waitFor(t, "event for c1 before the stream ends", func() bool { return len(e.sink.calls()) == 1 })
	close(release)
	tail, _ := io.ReadAll(br)
	if string(tail) != rest {
		t.Fatalf("tail changed: %q", tail)
	}
	waitFor(t, "event for c2", func() bool { return len(e.sink.calls()) == 2 })
	c1, c2 := e.sink.calls()[0], e.sink.calls()[1]
	if c1.GetMcp().GetToolName() != "search" || !c1.GetResults().GetSuccess() || c1.GetMcp().GetSessionId() != "sess-1" ||
		c1.GetCorrelationId() != "4bf92f3577b34da6a3ce929d0e0e4736" || c1.GetPreContext().GetParameters().AsMap()["api_key"] != "REDACTED" ||
		c1.GetMcp().GetRequestId() != "c1" {
		t.Errorf("c1 event %v", c1)
	}
	if c2.GetMcp().GetToolName() != "fetch" || c2.GetResults().GetSuccess() || c2.GetMcp().GetJsonrpcErrorCode() != -32000 ||
		c2.GetResults().GetError() != "token=REDACTED expired" || c2.GetMcp().GetArgumentBytes() != 0 {
		t.Errorf("c2 event %v", c2)
	}
	if e.metric(t, `omnibridge_mcp_messages_total{direction="response",kind="notification"}`) != 1 {
		t.Error("progress notification not counted")
	}
}

// TestNoResponseAndNonMCP covers a tools/call whose answer never comes (the
// upstream fails with a non-JSON-RPC error) and plain JSON traffic that is
// not MCP (ignored, passed through).
func TestNoResponseAndNonMCP(t *testing.T) {
	t.Parallel()
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if strings.Contains(string(body), "tools/call") {
			http.Error(w, "upstream exploded", http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body) // echo
	})
	e := newEnv(t, upstream, nil)
	post := func(body string) (int, string) {
		resp, err := e.front.Client().Post(e.front.URL+"/", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := post(`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"slow","arguments":{}}}`); code != http.StatusBadGateway {
		t.Fatalf("status %d", code)
	}
	waitFor(t, "no-response event", func() bool { return len(e.sink.calls()) == 1 })
	ev := e.sink.calls()[0]
	if ev.GetResults().GetSuccess() || ev.GetResults().GetErrorCode() != "no_response" || !strings.Contains(ev.GetResults().GetError(), "502") {
		t.Errorf("no-response event %v", ev.GetResults())
	}
	for _, body := range []string{`{"order":1}`, `[1,2,3]`, `"text"`} {
		if code, got := post(body); code != 200 || got != body {
			t.Errorf("non-MCP JSON changed: %d %q", code, got)
		}
	}
	if err := e.cap.Drain(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(e.sink.all()); n != 1 {
		t.Errorf("non-MCP traffic made events: %d", n)
	}
	if e.metric(t, `omnibridge_mcp_tool_calls_total{outcome="no_response"}`) != 1 {
		t.Error("no_response not counted")
	}
}

// TestOversizedCapture: a tools/list answer over MaxCaptureBytes passes
// through untouched, is not captured, and is counted.
func TestOversizedCapture(t *testing.T) {
	t.Parallel()
	big := `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"t","description":"` + strings.Repeat("d", 4096) + `","inputSchema":{"type":"object"}}]}}`
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, big)
	})
	e := newEnv(t, upstream, func(c *Config) { c.MaxCaptureBytes = 1024 })
	resp, err := e.front.Client().Post(e.front.URL, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != big {
		t.Fatal("oversized answer changed")
	}
	if err := e.cap.Drain(t.Context()); err != nil {
		t.Fatal(err)
	}
	if e.metric(t, `omnibridge_mcp_capture_dropped_total{reason="too_large"}`) != 1 || len(e.sink.all()) != 0 {
		t.Errorf("oversized capture: %d events", len(e.sink.all()))
	}
}

// TestToolDiffUnit drives the registry directly: discovered, unchanged,
// updated, paged lists never remove, list_changed then a full list removes.
func TestToolDiffUnit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, http.NotFoundHandler(), nil)
	r := e.cap.reg
	r.onList([]byte(`{"tools":[{"name":"a","inputSchema":{"type":"object","properties":{"x":{"type":"number"}}}},{"name":"b","description":"B"}]}`), false, nil)
	r.onList([]byte(`{"tools":[{"name":"a","inputSchema":{"properties":{"x":{"type":"number"}},"type":"object"}}]}`), false, nil) // same schema, keys reordered
	r.onList([]byte(`{"tools":[{"name":"b","description":"B2"}]}`), true, nil)
	r.markStale()
	r.onList([]byte(`{"tools":[{"name":"a","inputSchema":{"type":"object"}}],"nextCursor":"p2"}`), false, nil) // partial: no removal
	r.onList([]byte(`{"tools":[{"name":"c"}]}`), true, nil)                                                    // later page: no removal
	r.onList([]byte(`{"tools":[{"name":"a","inputSchema":{"type":"object"}},{"name":"c"}]}`), false, nil)      // complete: b removed
	var got []string
	for _, ev := range e.sink.tools() {
		got = append(got, strings.TrimPrefix(ev.GetEventType().String(), "TOOL_EVENT_TYPE_")+":"+ev.GetToolInfo().GetName())
	}
	want := "TOOL_DISCOVERED:a TOOL_DISCOVERED:b TOOL_UPDATED:b TOOL_UPDATED:a TOOL_DISCOVERED:c TOOL_REMOVED:b"
	if strings.Join(got, " ") != want {
		t.Errorf("events\n got %s\nwant %s", strings.Join(got, " "), want)
	}
}
