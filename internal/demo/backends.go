package demo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"
)

func randInt(n int) int {
	if n <= 0 {
		return 0
	}
	return rand.IntN(n)
}

// NewInventory builds the inventory service: GET /inventory/{sku} and POST
// /inventory/reserve. Its "slow release" fault adds latency to every request.
func NewInventory(cfg Config) (*Service, error) {
	s, err := newService("inventory", cfg)
	if err != nil {
		return nil, err
	}
	slow := func(ctx context.Context) error {
		return sleep(ctx, jitter(2*time.Millisecond, 3*time.Millisecond)+s.cfg.Faults.State().InventoryLatency)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /inventory/{sku}", s.handle("inventory.get", func(ctx context.Context, r *http.Request) (map[string]any, error) {
		if err := slow(ctx); err != nil {
			return nil, err
		}
		sku := r.PathValue("sku")
		return map[string]any{"sku": sku, "available": stockOf(sku)}, nil
	}))
	mux.Handle("POST /inventory/reserve", s.handle("inventory.reserve", func(ctx context.Context, r *http.Request) (map[string]any, error) {
		var in struct {
			SKU string `json:"sku"`
			Qty int    `json:"qty"`
		}
		if err := readJSON(r, &in); err != nil {
			return nil, err
		}
		if in.SKU == "" || in.Qty <= 0 {
			return nil, errorf(http.StatusBadRequest, "invalid_argument", "reserve: sku and a positive qty are required")
		}
		if err := slow(ctx); err != nil {
			return nil, err
		}
		if in.Qty > stockOf(in.SKU) {
			return nil, errorf(http.StatusConflict, "out_of_stock", "reserve %s: only %d left", in.SKU, stockOf(in.SKU))
		}
		return map[string]any{"sku": in.SKU, "reserved": in.Qty, "reservation": "res-" + randHex(6)}, nil
	}))
	s.handler = mux
	return s, nil
}

// stockOf is a deterministic stock level per SKU.
func stockOf(sku string) int {
	n := 0
	for _, c := range sku {
		n = n*31 + int(c)
	}
	return 5 + (n&0x7fffffff)%60
}

// NewPayments builds the payments service: POST /payments/charge and POST
// /payments/refund. Its "flaky" fault answers 503 to a share of requests.
func NewPayments(cfg Config) (*Service, error) {
	s, err := newService("payments", cfg)
	if err != nil {
		return nil, err
	}
	var attempt atomic.Uint64
	flaky := func(ctx context.Context, op string) error {
		if err := sleep(ctx, jitter(3*time.Millisecond, 4*time.Millisecond)); err != nil {
			return err
		}
		if hit(s.cfg.Faults.State().PaymentsErrorRate) {
			return errorf(http.StatusServiceUnavailable, "unavailable", "%s: card processor unavailable (attempt %d)", op, attempt.Add(1))
		}
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("POST /payments/charge", s.handle("payments.charge", func(ctx context.Context, r *http.Request) (map[string]any, error) {
		var in struct {
			OrderID string  `json:"order_id"`
			Amount  float64 `json:"amount"`
		}
		if err := readJSON(r, &in); err != nil {
			return nil, err
		}
		if in.OrderID == "" || in.Amount <= 0 {
			return nil, errorf(http.StatusBadRequest, "invalid_argument", "charge: order_id and a positive amount are required")
		}
		if err := flaky(ctx, "charge"); err != nil {
			return nil, err
		}
		return map[string]any{"payment_id": "pay-" + randHex(6), "order_id": in.OrderID, "amount": in.Amount, "status": "captured"}, nil
	}))
	mux.Handle("POST /payments/refund", s.handle("payments.refund", func(ctx context.Context, r *http.Request) (map[string]any, error) {
		var in struct {
			OrderID string  `json:"order_id"`
			Amount  float64 `json:"amount"`
		}
		if err := readJSON(r, &in); err != nil {
			return nil, err
		}
		if in.OrderID == "" {
			return nil, errorf(http.StatusBadRequest, "invalid_argument", "refund: order_id is required")
		}
		if err := flaky(ctx, "refund"); err != nil {
			return nil, err
		}
		return map[string]any{"refund_id": "ref-" + randHex(6), "order_id": in.OrderID, "amount": in.Amount, "status": "refunded"}, nil
	}))
	s.handler = mux
	return s, nil
}

// NewOrders builds one orders instance: POST /orders (reserve at inventory,
// then charge at payments) and GET /orders/{id}. An instance whose version is
// not "v1" is the canary: the canary fault makes it answer 500 to a share of
// requests.
func NewOrders(cfg Config) (*Service, error) {
	s, err := newService("orders", cfg)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"inventory", "payments"} {
		if _, err := s.cfg.dep(d); err != nil {
			return nil, fmt.Errorf("build orders: %w", err)
		}
	}
	canary := s.Version != "v1"
	bad := func() error {
		if canary && hit(s.cfg.Faults.State().CanaryErrorRate) {
			return errorf(http.StatusInternalServerError, "internal", "order validation failed in %s: nil pricing rule for region %d", s.Version, 1+randInt(9))
		}
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("POST /orders", s.handle("orders.create", func(ctx context.Context, r *http.Request) (map[string]any, error) {
		var in struct {
			SKU    string  `json:"sku"`
			Qty    int     `json:"qty"`
			Amount float64 `json:"amount"`
		}
		if err := readJSON(r, &in); err != nil {
			return nil, err
		}
		if err := bad(); err != nil {
			return nil, err
		}
		if err := s.call(ctx, "inventory", http.MethodPost, "/inventory/reserve", map[string]any{"sku": in.SKU, "qty": in.Qty}, nil); err != nil {
			return nil, err
		}
		id := "ord-" + randHex(6)
		if err := s.call(ctx, "payments", http.MethodPost, "/payments/charge", map[string]any{"order_id": id, "amount": in.Amount}, nil); err != nil {
			return nil, err
		}
		return map[string]any{"order_id": id, "status": "confirmed", "version": s.Version}, nil
	}))
	mux.Handle("GET /orders/{id}", s.handle("orders.get", func(ctx context.Context, r *http.Request) (map[string]any, error) {
		if err := bad(); err != nil {
			return nil, err
		}
		if err := sleep(ctx, jitter(time.Millisecond, 2*time.Millisecond)); err != nil {
			return nil, err
		}
		return map[string]any{"order_id": r.PathValue("id"), "status": "shipped", "version": s.Version}, nil
	}))
	s.handler = mux
	return s, nil
}
