package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// NewStorefront builds the edge service: GET /api/products/{sku} (the MCP
// tool inventory.check), GET /api/search?q= (catalog.search), POST
// /api/checkout (orders), GET /api/orders/{id} (orders) and POST /api/refunds
// (payments.refund). It needs Deps "orders" and "catalog" (the MCP server's
// base URL; MCPPath is appended).
func NewStorefront(cfg Config) (*Service, error) {
	s, err := newService("storefront", cfg)
	if err != nil {
		return nil, err
	}
	if _, err := s.cfg.dep("orders"); err != nil {
		return nil, fmt.Errorf("build storefront: %w", err)
	}
	catalog, err := s.cfg.dep("catalog")
	if err != nil {
		return nil, fmt.Errorf("build storefront: %w", err)
	}
	tools := &toolClient{
		endpoint: strings.TrimRight(catalog, "/") + MCPPath,
		http:     &http.Client{Transport: propagatingTransport{base: http.DefaultTransport}},
		version:  s.Version,
	}
	s.closers = append(s.closers, tools.close)
	mux := http.NewServeMux()
	mux.Handle("GET /api/products/{sku}", s.handle("storefront.product", func(ctx context.Context, r *http.Request) (map[string]any, error) {
		return tools.call(ctx, ToolInventoryCheck, map[string]any{"sku": r.PathValue("sku")})
	}))
	mux.Handle("GET /api/search", s.handle("storefront.search", func(ctx context.Context, r *http.Request) (map[string]any, error) {
		return tools.call(ctx, ToolCatalogSearch, map[string]any{"query": r.URL.Query().Get("q"), "limit": 5})
	}))
	mux.Handle("POST /api/checkout", s.handle("storefront.checkout", func(ctx context.Context, r *http.Request) (map[string]any, error) {
		var in map[string]any
		if err := readJSON(r, &in); err != nil {
			return nil, err
		}
		var out map[string]any
		if err := s.call(ctx, "orders", http.MethodPost, "/orders", in, &out); err != nil {
			return nil, err
		}
		return out, nil
	}))
	mux.Handle("GET /api/orders/{id}", s.handle("storefront.order", func(ctx context.Context, r *http.Request) (map[string]any, error) {
		var out map[string]any
		if err := s.call(ctx, "orders", http.MethodGet, "/orders/"+r.PathValue("id"), nil, &out); err != nil {
			return nil, err
		}
		return out, nil
	}))
	mux.Handle("POST /api/refunds", s.handle("storefront.refund", func(ctx context.Context, r *http.Request) (map[string]any, error) {
		var in struct {
			OrderID string  `json:"order_id"`
			Amount  float64 `json:"amount"`
		}
		if err := readJSON(r, &in); err != nil {
			return nil, err
		}
		return tools.call(ctx, ToolPaymentsRefund, map[string]any{"order_id": in.OrderID, "amount": in.Amount})
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	s.handler = mux
	return s, nil
}

// toolClient holds one MCP client session to the catalog, reconnecting after
// a transport failure.
type toolClient struct {
	endpoint string
	http     *http.Client
	version  string

	mu      sync.Mutex
	session *mcp.ClientSession
}

func (t *toolClient) get(ctx context.Context) (*mcp.ClientSession, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.session != nil {
		return t.session, nil
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "storefront", Version: t.version}, nil)
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cs, err := c.Connect(cctx, &mcp.StreamableClientTransport{Endpoint: t.endpoint, HTTPClient: t.http, DisableStandaloneSSE: true, MaxRetries: -1}, nil)
	if err != nil {
		return nil, err
	}
	t.session = cs
	return cs, nil
}

func (t *toolClient) drop(cs *mcp.ClientSession) {
	t.mu.Lock()
	if t.session == cs {
		t.session = nil
	}
	t.mu.Unlock()
	_ = cs.Close()
}

func (t *toolClient) close() {
	t.mu.Lock()
	cs := t.session
	t.session = nil
	t.mu.Unlock()
	if cs != nil {
		_ = cs.Close()
	}
}

// call calls a tool and returns its structured result; a tool error becomes 502.
func (t *toolClient) call(ctx context.Context, name string, args map[string]any) (map[string]any, error) {
	cs, err := t.get(ctx)
	if err != nil {
		return nil, errorf(http.StatusBadGateway, "unavailable", "connect to MCP server: %v", err)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.drop(cs)
		return nil, errorf(http.StatusBadGateway, "unavailable", "call tool %s: %v", name, err)
	}
	if res.IsError {
		var msg []string
		for _, c := range res.Content {
			if tc, ok := c.(*mcp.TextContent); ok {
				msg = append(msg, tc.Text)
			}
		}
		return nil, errorf(http.StatusBadGateway, "tool_error", "tool %s failed: %s", name, strings.Join(msg, "; "))
	}
	out := map[string]any{}
	if res.StructuredContent != nil {
		b, err := json.Marshal(res.StructuredContent)
		if err == nil {
			_ = json.Unmarshal(b, &out)
		}
	}
	return out, nil
}
