package mcp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"github.com/omninode/bridge/sidecar/redact"
	"google.golang.org/protobuf/proto"
)

type addIn struct {
	A int `json:"a" jsonschema:"first addend"`
	B int `json:"b" jsonschema:"second addend"`
}

type addOut struct {
	Sum int `json:"sum"`
}

type loginIn struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// newMCPServer is a real go-sdk MCP server with three tools.
func newMCPServer() (*mcp.Server, http.Handler) {
	s := mcp.NewServer(&mcp.Implementation{Name: "inventory", Version: "1.0.0"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "add", Description: "Adds two numbers."},
		func(_ context.Context, _ *mcp.CallToolRequest, in addIn) (*mcp.CallToolResult, addOut, error) {
			return nil, addOut{Sum: in.A + in.B}, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "fail", Description: "Always fails.", Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(_ context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			return nil, nil, errors.New("warehouse offline")
		})
	mcp.AddTool(s, &mcp.Tool{Name: "login", Description: "Logs in."},
		func(_ context.Context, _ *mcp.CallToolRequest, in loginIn) (*mcp.CallToolResult, any, error) {
			return nil, nil, fmt.Errorf("bad credentials for %s: password=%s", in.User, in.Password)
		})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s },
		&mcp.StreamableHTTPOptions{DisableLocalhostProtection: true})
	return s, h
}

func connectClient(t *testing.T, endpoint, version string) *mcp.ClientSession {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "0.1.0"}, nil)
	var opts *mcp.ClientSessionOptions
	if version != "" {
		opts = &mcp.ClientSessionOptions{ProtocolVersion: version}
	}
	cs, err := client.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: endpoint}, opts)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

func TestSDKThroughProxy(t *testing.T) {
	t.Parallel()
	for _, version := range []string{"", "2025-11-25"} {
		name := version
		if name == "" {
			name = "latest"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			server, handler := newMCPServer()
			e := newEnv(t, handler, nil)
			cs := connectClient(t, e.front.URL, version)
			ctx := t.Context()

			// tools/list -> one tool_discovered per tool, with its input schema.
			list, err := cs.ListTools(ctx, nil)
			if err != nil || len(list.Tools) != 3 {
				t.Fatalf("ListTools: %v %v", list, err)
			}
			waitFor(t, "3 tool events", func() bool { return len(e.sink.tools()) == 3 })
			byName := map[string]*bridgev1.ToolRegistrationEvent{}
			for _, ev := range e.sink.tools() {
				if ev.GetEventType() != bridgev1.ToolEventType_TOOL_EVENT_TYPE_TOOL_DISCOVERED ||
					ev.GetRegistrationMethod() != bridgev1.RegistrationMethod_REGISTRATION_METHOD_DISCOVERY ||
					ev.GetToolInfo().GetServiceSource() != service || len(ev.GetToolInfo().GetSchemaHash()) != 64 {
					t.Errorf("tool event %v", ev)
				}
				if err := bus.Validate(ev); err != nil {
					t.Errorf("tool event invalid: %v", err)
				}
				byName[ev.GetToolInfo().GetName()] = ev
			}
			add := byName["add"].GetToolInfo()
			props := add.GetSignature().GetFields()["properties"].GetStructValue().GetFields()
			if add.GetDescription() != "Adds two numbers." || props["a"] == nil || props["b"] == nil ||
				props["a"].GetStructValue().GetFields()["description"].GetStringValue() != "first addend" {
				t.Errorf("add signature %v", add)
			}
			if add.GetMetadata().GetFields()["outputSchema"] == nil {
				t.Errorf("add metadata lacks outputSchema: %v", add.GetMetadata())
			}
			if caps := byName["fail"].GetToolInfo().GetCapabilities(); len(caps) != 1 || caps[0] != "read_only" {
				t.Errorf("fail capabilities %v", caps)
			}

			// Listing again changes nothing.
			cs2 := connectClient(t, e.front.URL, version)
			if _, err := cs2.ListTools(ctx, nil); err != nil {
				t.Fatal(err)
			}

			// tools/call: success, tool error, JSON-RPC error.
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "add", Arguments: map[string]any{"a": 2, "b": 3}})
			if err != nil || res.IsError {
				t.Fatalf("add: %v %v", res, err)
			}
			res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "fail", Arguments: map[string]any{}})
			if err != nil || !res.IsError {
				t.Fatalf("fail: %v %v", res, err)
			}
			_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "nope", Arguments: map[string]any{}})
			if err == nil {
				t.Fatal("unknown tool succeeded")
			}
			waitFor(t, "3 call events", func() bool { return len(e.sink.calls()) == 3 })
			calls := map[string]*bridgev1.ExecutionIntelligenceEvent{}
			for _, ev := range e.sink.calls() {
				if err := bus.Validate(ev); err != nil {
					t.Errorf("call event invalid: %v", err)
				}
				if ev.GetKind() != bridgev1.ExecutionKind_EXECUTION_KIND_MCP_TOOL_CALL || ev.GetPreContext().GetServiceName() != service ||
					ev.GetResults().GetExecutionTime().AsDuration() <= 0 || ev.GetMcp().GetRequestId() == "" || len(ev.GetCorrelationId()) != 36 {
					t.Errorf("call event %v", ev)
				}
				if version != "" && ev.GetMcp().GetSessionId() == "" {
					t.Errorf("call event without session id: %v", ev.GetMcp())
				}
				calls[ev.GetMcp().GetToolName()] = ev
			}
			if ok := calls["add"]; !ok.GetResults().GetSuccess() || ok.GetMcp().GetArgumentBytes() == 0 ||
				ok.GetPreContext().GetParameters().AsMap()["a"] != float64(2) || ok.GetPreContext().GetOperation() != "add" {
				t.Errorf("add call %v", ok)
			}
			if f := calls["fail"]; f.GetResults().GetSuccess() || !f.GetMcp().GetToolError() || !strings.Contains(f.GetResults().GetError(), "warehouse offline") {
				t.Errorf("fail call %v", f)
			}
			if n := calls["nope"]; n.GetResults().GetSuccess() || n.GetMcp().GetJsonrpcErrorCode() != -32602 || n.GetResults().GetErrorCode() != "-32602" {
				t.Errorf("unknown-tool call %v", n)
			}

			// A tool changes: the next listing reports tool_updated, only for it.
			mcp.AddTool(server, &mcp.Tool{Name: "add", Description: "Adds two integers, exactly."},
				func(_ context.Context, _ *mcp.CallToolRequest, in addIn) (*mcp.CallToolResult, addOut, error) {
					return nil, addOut{Sum: in.A + in.B}, nil
				})
			cs3 := connectClient(t, e.front.URL, version)
			if _, err := cs3.ListTools(ctx, nil); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "tool_updated", func() bool { return len(e.sink.tools()) == 4 })
			upd := e.sink.tools()[3]
			if upd.GetEventType() != bridgev1.ToolEventType_TOOL_EVENT_TYPE_TOOL_UPDATED || upd.GetToolInfo().GetName() != "add" ||
				upd.GetToolInfo().GetDescription() != "Adds two integers, exactly." || upd.GetToolInfo().GetSchemaHash() == add.GetSchemaHash() {
				t.Errorf("update event %v", upd)
			}
		})
	}
}

// TestSDKListChangedRemovesTools runs the legacy protocol, where the server
// pushes notifications/tools/list_changed on the session's GET stream: the
// next full listing is diffed and a missing tool becomes tool_removed.
func TestSDKListChangedRemovesTools(t *testing.T) {
	t.Parallel()
	server, handler := newMCPServer()
	e := newEnv(t, handler, nil)
	cs := connectClient(t, e.front.URL, "2025-11-25")
	ctx := t.Context()
	if _, err := cs.ListTools(ctx, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "discovery", func() bool { return len(e.sink.tools()) == 3 })
	server.RemoveTools("fail")
	waitFor(t, "list_changed seen on the GET stream", func() bool {
		return e.metric(t, `omnibridge_mcp_messages_total{direction="response",kind="notification"}`) >= 1
	})
	if _, err := cs.ListTools(ctx, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "tool_removed", func() bool { return len(e.sink.tools()) == 4 })
	rm := e.sink.tools()[3]
	if rm.GetEventType() != bridgev1.ToolEventType_TOOL_EVENT_TYPE_TOOL_REMOVED || rm.GetToolInfo().GetName() != "fail" {
		t.Errorf("removal event %v", rm)
	}
	if got := e.metric(t, "omnibridge_mcp_tools"); got != 2 {
		t.Errorf("known tools %v", got)
	}
}

// TestSDKCanarySecret sends a unique secret as a tool argument, in the
// Authorization header and in the query, and checks it appears in no event,
// metric or log line, while the upstream still received it unchanged.
func TestSDKCanarySecret(t *testing.T) {
	t.Parallel()
	const canary = "mcp-cnry-8d2e6f4a1b9c"
	_, handler := newMCPServer()
	e := newEnv(t, handler, nil)
	hc := &http.Client{Transport: headerTransport{"Authorization": "Bearer " + canary, "Cookie": "s=" + canary}}
	client := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "0.1.0"}, nil)
	cs, err := client.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: e.front.URL + "/?token=" + canary, HTTPClient: hc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "login", Arguments: map[string]any{"user": "bob", "password": canary}})
	if err != nil || !res.IsError {
		t.Fatalf("login: %v %v", res, err)
	}
	// The tool's error text echoes the secret: proof the bytes reached the
	// upstream unchanged, and a test of error redaction.
	if tc, ok := res.Content[0].(*mcp.TextContent); !ok || !strings.Contains(tc.Text, canary) {
		t.Fatalf("upstream did not get the argument: %v", res.Content)
	}
	waitFor(t, "login call event", func() bool { return len(e.sink.calls()) == 1 })
	ev := e.sink.calls()[0]
	if ev.GetPreContext().GetParameters().AsMap()["password"] != redact.Redacted || ev.GetPreContext().GetParameters().AsMap()["user"] != "bob" {
		t.Errorf("parameters %v", ev.GetPreContext().GetParameters())
	}
	for _, ev := range e.sink.all() {
		b, _ := proto.Marshal(ev)
		if strings.Contains(string(b), canary) {
			t.Errorf("canary in %T: %v", ev, ev)
		}
	}
	if strings.Contains(e.metricsText(t), canary) {
		t.Error("canary in metrics")
	}
	if strings.Contains(e.logs.String(), canary) {
		t.Error("canary in logs")
	}
}

type headerTransport map[string]string

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h {
		r.Header.Set(k, v)
	}
	return http.DefaultTransport.RoundTrip(r)
}
