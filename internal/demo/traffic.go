package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Action is one kind of user request the generator sends.
type Action string

// Actions of the mix.
const (
	ActionBrowse   Action = "browse"   // GET /api/products/{sku}
	ActionSearch   Action = "search"   // GET /api/search?q=
	ActionCheckout Action = "checkout" // POST /api/checkout
	ActionOrder    Action = "order"    // GET /api/orders/{id}
	ActionRefund   Action = "refund"   // POST /api/refunds
)

// Mix weighs the actions against each other; a zero Mix means DefaultMix.
type Mix struct {
	Browse, Search, Checkout, Order, Refund int
}

// DefaultMix is a shop's usual mix: mostly browsing and searching, some
// checkouts, a few order lookups and refunds.
func DefaultMix() Mix { return Mix{Browse: 45, Search: 25, Checkout: 18, Order: 8, Refund: 4} }

func (m Mix) pick() Action {
	if m == (Mix{}) {
		m = DefaultMix()
	}
	ws := []struct {
		a Action
		w int
	}{{ActionBrowse, m.Browse}, {ActionSearch, m.Search}, {ActionCheckout, m.Checkout}, {ActionOrder, m.Order}, {ActionRefund, m.Refund}}
	total := 0
	for _, w := range ws {
		total += max(w.w, 0)
	}
	if total == 0 {
		return ActionBrowse
	}
	n := rand.IntN(total)
	for _, w := range ws {
		if n < max(w.w, 0) {
			return w.a
		}
		n -= max(w.w, 0)
	}
	return ActionBrowse
}

// Traffic generates user traffic against the storefront at a constant rate
// (open loop: a slow answer does not slow the sending, up to MaxInFlight).
type Traffic struct {
	// Target is the storefront's base URL (its sidecar). Required.
	Target string
	// Rate is requests per second; default 20.
	Rate float64
	// Mix weighs the actions; zero means DefaultMix.
	Mix Mix
	// Sessions is the number of simulated users; default 40.
	Sessions int
	// MaxInFlight bounds concurrent requests; beyond it a tick is skipped and
	// counted. Default 64.
	MaxInFlight int
	// Client sends the requests; default a client with a 10 s timeout.
	Client *http.Client
	// Stats, when set, receives the counts.
	Stats *TrafficStats
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
}

// TrafficStats counts what the generator sent. Safe for concurrent use.
type TrafficStats struct {
	Sent, OK, Failed, Skipped atomic.Uint64

	mu       sync.Mutex
	byAction map[Action][2]uint64 // ok, failed
}

func (s *TrafficStats) record(a Action, ok bool) {
	s.Sent.Add(1)
	if ok {
		s.OK.Add(1)
	} else {
		s.Failed.Add(1)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byAction == nil {
		s.byAction = map[Action][2]uint64{}
	}
	v := s.byAction[a]
	if ok {
		v[0]++
	} else {
		v[1]++
	}
	s.byAction[a] = v
}

// ByAction returns ok and failed counts per action.
func (s *TrafficStats) ByAction() map[Action][2]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[Action][2]uint64, len(s.byAction))
	for k, v := range s.byAction {
		out[k] = v
	}
	return out
}

// session is one simulated user.
type session struct {
	mu     sync.Mutex
	id     string
	viewed []string
	orders []string
}

// Run sends traffic until ctx ends, then waits for in-flight requests and
// returns nil.
func (t Traffic) Run(ctx context.Context) error {
	if err := checkBaseURL(t.Target); err != nil {
		return fmt.Errorf("traffic target: %w", err)
	}
	if t.Rate <= 0 {
		t.Rate = 20
	}
	if t.Sessions <= 0 {
		t.Sessions = 40
	}
	if t.MaxInFlight <= 0 {
		t.MaxInFlight = 64
	}
	if t.Client == nil {
		t.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if t.Stats == nil {
		t.Stats = &TrafficStats{}
	}
	if t.Logger == nil {
		t.Logger = slog.New(slog.DiscardHandler)
	}
	sessions := make([]*session, t.Sessions)
	for i := range sessions {
		sessions[i] = &session{id: "sess-" + randHex(6)}
	}
	interval := max(time.Duration(float64(time.Second)/t.Rate), time.Millisecond)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	sem := make(chan struct{}, t.MaxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			t.Stats.Skipped.Add(1)
			continue
		}
		s := sessions[rand.IntN(len(sessions))]
		a := t.Mix.pick()
		wg.Go(func() {
			defer func() { <-sem }()
			ok := t.do(ctx, s, a)
			if ctx.Err() == nil || ok {
				// A request cut by the end of the run is not a failure.
				t.Stats.record(a, ok)
			}
		})
	}
}

var searchWords = []string{"shoes", "jacket", "socks", "running", "vest", "headlamp", "poles", "merino", "tent"}

// do sends one action for a session and reports whether it succeeded.
func (t Traffic) do(ctx context.Context, s *session, a Action) bool {
	s.mu.Lock()
	var method, path string
	var body any
	switch a {
	case ActionSearch:
		method, path = http.MethodGet, "/api/search?q="+searchWords[rand.IntN(len(searchWords))]
	case ActionCheckout:
		sku := Products[rand.IntN(len(Products))].SKU
		if len(s.viewed) > 0 {
			sku = s.viewed[rand.IntN(len(s.viewed))]
		}
		method, path = http.MethodPost, "/api/checkout"
		body = map[string]any{"sku": sku, "qty": 1 + rand.IntN(2), "amount": 10 + float64(rand.IntN(9000))/100}
	case ActionOrder, ActionRefund:
		if len(s.orders) == 0 {
			a = ActionBrowse
			break
		}
		id := s.orders[rand.IntN(len(s.orders))]
		if a == ActionOrder {
			method, path = http.MethodGet, "/api/orders/"+id
		} else {
			method, path = http.MethodPost, "/api/refunds"
			body = map[string]any{"order_id": id, "amount": 5}
		}
	}
	if a == ActionBrowse {
		sku := Products[rand.IntN(len(Products))].SKU
		s.viewed = append(s.viewed[max(0, len(s.viewed)-4):], sku)
		method, path = http.MethodGet, "/api/products/"+sku
	}
	s.mu.Unlock()

	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(t.Target, "/")+path, rd)
	if err != nil {
		return false
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set(HeaderTraceparent, "00-"+randHex(16)+"-"+randHex(8)+"-01")
	req.Header.Set(HeaderCorrelationID, "req-"+randHex(8))
	req.Header.Set(HeaderSessionID, s.id)
	resp, err := t.Client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			t.Logger.Debug("traffic request", "action", a, "err", err)
		}
		return false
	}
	defer resp.Body.Close()
	var out struct {
		OrderID string `json:"order_id"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out)
	ok := resp.StatusCode < 400
	if ok && a == ActionCheckout && out.OrderID != "" {
		s.mu.Lock()
		s.orders = append(s.orders[max(0, len(s.orders)-4):], out.OrderID)
		s.mu.Unlock()
	}
	return ok
}
