package sidecar

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/testenv"
)

type sumIn struct {
	A int `json:"a" jsonschema:"first addend"`
	B int `json:"b" jsonschema:"second addend"`
}

// TestMCPThroughSidecar runs a go-sdk MCP server behind the sidecar (--mcp)
// and a go-sdk client in front, and checks the events on the broker.
func TestMCPThroughSidecar(t *testing.T) {
	t.Parallel()
	kafka := testenv.Kafka(t)
	events := collect(t, kafka.Brokers())
	srv := mcp.NewServer(&mcp.Implementation{Name: "inventory", Version: "1.0.0"}, nil)
	mcp.AddTool(srv, &mcp.Tool{Name: "add", Description: "Adds two numbers."},
		func(_ context.Context, _ *mcp.CallToolRequest, in sumIn) (*mcp.CallToolResult, struct{ Sum int }, error) {
			return nil, struct{ Sum int }{in.A + in.B}, nil
		})
	mcp.AddTool(srv, &mcp.Tool{Name: "fail", Description: "Always fails."},
		func(_ context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			return nil, nil, errors.New("warehouse offline")
		})
	up := startUpstream(t, mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil))
	sc := startSidecar(t, up, kafka.Brokers(), func(c *Config) { c.MCP = true })

	client := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "0.1.0"}, nil)
	cs, err := client.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: "http://" + sc.ProxyAddr() + "/mcp"}, nil)
	if err != nil {
		t.Fatalf("connect through the sidecar: %v", err)
	}
	defer cs.Close()
	if list, err := cs.ListTools(t.Context(), nil); err != nil || len(list.Tools) != 2 {
		t.Fatalf("tools/list: %v %v", list, err)
	}
	if res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "add", Arguments: map[string]any{"a": 2, "b": 3}}); err != nil || res.IsError {
		t.Fatalf("add: %v %v", res, err)
	}
	if res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "fail", Arguments: map[string]any{}}); err != nil || !res.IsError {
		t.Fatalf("fail: %v %v", res, err)
	}

	deadline := time.Now().Add(10 * time.Second)
	for {
		var tools, execs, mcpComm int
		var addSchema, failErr bool
		events.mu.Lock()
		for _, ev := range events.events {
			switch e := ev.(type) {
			case *bridgev1.ToolRegistrationEvent:
				if e.GetEventType() == bridgev1.ToolEventType_TOOL_EVENT_TYPE_TOOL_DISCOVERED && e.GetToolInfo().GetServiceSource() == "orders" {
					tools++
					if e.GetToolInfo().GetName() == "add" && e.GetToolInfo().GetSignature().GetFields()["properties"] != nil {
						addSchema = true
					}
				}
			case *bridgev1.ExecutionIntelligenceEvent:
				if e.GetKind() == bridgev1.ExecutionKind_EXECUTION_KIND_MCP_TOOL_CALL {
					execs++
					if e.GetMcp().GetToolName() == "fail" && !e.GetResults().GetSuccess() && e.GetMcp().GetToolError() {
						failErr = true
					}
				}
			case *bridgev1.CommunicationIntelligenceEvent:
				if e.GetRequestContext().GetProtocol() == bridgev1.Protocol_PROTOCOL_MCP && e.GetRequestContext().GetRoute() == "/mcp" {
					mcpComm++
				}
			}
		}
		events.mu.Unlock()
		if tools == 2 && execs == 2 && addSchema && failErr && mcpComm >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tools %d (add schema %v), executions %d (failing one %v), MCP communication events %d",
				tools, addSchema, execs, failErr, mcpComm)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
