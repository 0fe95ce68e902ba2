package demo

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// MCPPath is where the catalog serves MCP over streamable HTTP.
const MCPPath = "/mcp"

// Tool names the catalog serves.
const (
	ToolCatalogSearch  = "catalog.search"
	ToolInventoryCheck = "inventory.check"
	ToolPaymentsRefund = "payments.refund"
)

type searchIn struct {
	Query string `json:"query" jsonschema:"words to look for in product names"`
	Limit int    `json:"limit,omitempty" jsonschema:"most items to return (default 5)"`
}

type product struct {
	SKU   string  `json:"sku"`
	Name  string  `json:"name"`
	Price float64 `json:"price"`
}

type searchOut struct {
	Items []product `json:"items"`
}

type checkIn struct {
	SKU string `json:"sku" jsonschema:"the product SKU"`
}

type checkOut struct {
	SKU       string `json:"sku"`
	Available int    `json:"available"`
}

type refundIn struct {
	OrderID string  `json:"order_id" jsonschema:"the order to refund"`
	Amount  float64 `json:"amount,omitempty" jsonschema:"amount to refund; the whole order when 0"`
}

type refundOut struct {
	RefundID string `json:"refund_id"`
	Status   string `json:"status"`
}

// Products is the demo catalog.
var Products = []product{
	{"sku-1001", "trail running shoes", 89.90}, {"sku-1002", "rain jacket", 129.00},
	{"sku-1003", "wool socks", 12.50}, {"sku-1004", "running cap", 19.90},
	{"sku-1005", "hydration vest", 74.00}, {"sku-1006", "headlamp", 39.95},
	{"sku-1007", "trekking poles", 64.00}, {"sku-1008", "merino shirt", 55.00},
}

// NewCatalog builds the MCP server: catalog.search, inventory.check (which
// asks inventory when Deps has it) and payments.refund (which asks payments
// when Deps has it), served at MCPPath. Its fault makes inventory.check fail.
func NewCatalog(cfg Config) (*Service, error) {
	s, err := newService("catalog", cfg)
	if err != nil {
		return nil, err
	}
	srv := mcp.NewServer(&mcp.Implementation{Name: "catalog", Version: s.Version}, nil)
	mcp.AddTool(srv, &mcp.Tool{Name: ToolCatalogSearch, Description: "Search the product catalog by name."},
		toolOp(s, ToolCatalogSearch, func(ctx context.Context, in searchIn) (searchOut, error) {
			if err := sleep(ctx, jitter(2*time.Millisecond, 4*time.Millisecond)); err != nil {
				return searchOut{}, err
			}
			limit := in.Limit
			if limit <= 0 {
				limit = 5
			}
			out := searchOut{Items: []product{}}
			q := strings.ToLower(in.Query)
			for _, p := range Products {
				if len(out.Items) < limit && (q == "" || strings.Contains(p.Name, q)) {
					out.Items = append(out.Items, p)
				}
			}
			return out, nil
		}))
	mcp.AddTool(srv, &mcp.Tool{Name: ToolInventoryCheck, Description: "Check how many units of a product are available."},
		toolOp(s, ToolInventoryCheck, func(ctx context.Context, in checkIn) (checkOut, error) {
			if in.SKU == "" {
				return checkOut{}, errors.New("sku is required")
			}
			if hit(s.cfg.Faults.State().ToolErrorRate) {
				return checkOut{}, fmt.Errorf("inventory backend timeout after %d ms", 200+randInt(100))
			}
			out := checkOut{SKU: in.SKU}
			if _, ok := s.cfg.Deps["inventory"]; ok {
				var got struct {
					Available int `json:"available"`
				}
				if err := s.call(ctx, "inventory", http.MethodGet, "/inventory/"+in.SKU, nil, &got); err != nil {
					return checkOut{}, err
				}
				out.Available = got.Available
			} else {
				out.Available = stockOf(in.SKU)
			}
			return out, nil
		}))
	mcp.AddTool(srv, &mcp.Tool{Name: ToolPaymentsRefund, Description: "Refund an order, wholly or partly."},
		toolOp(s, ToolPaymentsRefund, func(ctx context.Context, in refundIn) (refundOut, error) {
			if in.OrderID == "" {
				return refundOut{}, errors.New("order_id is required")
			}
			if _, ok := s.cfg.Deps["payments"]; ok {
				var got refundOut
				if err := s.call(ctx, "payments", http.MethodPost, "/payments/refund", map[string]any{"order_id": in.OrderID, "amount": in.Amount}, &got); err != nil {
					return refundOut{}, err
				}
				return got, nil
			}
			return refundOut{RefundID: "ref-" + randHex(6), Status: "refunded"}, nil
		}))
	mux := http.NewServeMux()
	mux.Handle(MCPPath, mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil))
	s.handler = mux
	return s, nil
}

// toolOp adapts a typed tool function: propagation from the HTTP headers of
// the call, and an execution hook per call.
func toolOp[In, Out any](s *Service, name string, fn func(context.Context, In) (Out, error)) mcp.ToolHandlerFor[In, Out] {
	return func(ctx context.Context, req *mcp.CallToolRequest, in In) (*mcp.CallToolResult, Out, error) {
		r := &http.Request{Header: http.Header{}}
		if req != nil && req.Extra != nil && req.Extra.Header != nil {
			r.Header = req.Extra.Header
		}
		m := incomingMeta(r)
		ctx = withMeta(ctx, m)
		start := time.Now()
		out, err := fn(ctx, in)
		ex := execution{operation: "tool:" + name, started: start, elapsed: time.Since(start), err: err}
		status := http.StatusOK
		if err != nil {
			ex.errCode = "tool_error"
			status = http.StatusInternalServerError
		}
		s.cfg.Metrics.observe(s.Name, s.Version, "tool:"+name, status)
		s.hooks.report(m, ex)
		return nil, out, err
	}
}
