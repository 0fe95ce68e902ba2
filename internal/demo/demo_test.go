package demo

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protojson"
)

// hookSink is a fake sidecar hook receiver that decodes what it gets.
type hookSink struct {
	mu   sync.Mutex
	got  []*bridgev1.ReportExecutionRequest
	hdrs []http.Header
}

func (h *hookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/hooks/execution" || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "bad hook", http.StatusBadRequest)
		return
	}
	b, _ := io.ReadAll(r.Body)
	var req bridgev1.ReportExecutionRequest
	if err := protojson.Unmarshal(b, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.got = append(h.got, &req)
	h.hdrs = append(h.hdrs, r.Header.Clone())
	h.mu.Unlock()
	_, _ = w.Write([]byte(`{"eventId":"x"}`))
}

func (h *hookSink) ops() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]int{}
	for _, r := range h.got {
		out[r.GetPreContext().GetOperation()]++
	}
	return out
}

// recordingFront is a Front that puts a recording reverse proxy in front of
// each service, as a sidecar would, and a hook sink beside it.
type recordingFront struct {
	t     *testing.T
	mu    sync.Mutex
	seen  map[string][]http.Header // service -> request headers
	ups   map[string][]Upstream
	hooks map[string]*hookSink
}

func (f *recordingFront) front(service string, ups []Upstream) (FrontEnd, error) {
	f.mu.Lock()
	f.ups[service] = ups
	sink := &hookSink{}
	f.hooks[service] = sink
	f.mu.Unlock()
	target := ups[0].URL
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.seen[service] = append(f.seen[service], r.Header.Clone())
		f.mu.Unlock()
		out, _ := http.NewRequestWithContext(r.Context(), r.Method, target+r.URL.RequestURI(), r.Body)
		out.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	hooks := httptest.NewServer(sink)
	f.t.Cleanup(proxy.Close)
	f.t.Cleanup(hooks.Close)
	return FrontEnd{URL: proxy.URL, HooksURL: hooks.URL}, nil
}

func startTopology(t *testing.T, top Topology) *Deployment {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	d, err := top.Start(ctx)
	if err != nil {
		cancel()
		t.Fatalf("start topology: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := d.Wait(); err != nil {
			t.Errorf("wait: %v", err)
		}
	})
	return d
}

func getJSON(t *testing.T, method, url, body string, hdr map[string]string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestTopologyThroughFronts(t *testing.T) {
	t.Parallel()
	rf := &recordingFront{t: t, seen: map[string][]http.Header{}, ups: map[string][]Upstream{}, hooks: map[string]*hookSink{}}
	d := startTopology(t, Topology{Front: rf.front, CanaryWeight: 30})

	if got := len(rf.ups["orders"]); got != 2 {
		t.Fatalf("orders upstreams = %d, want 2 (v1 and v2)", got)
	}
	if w := rf.ups["orders"][1]; w.Version != "v2" || w.Weight != 30 {
		t.Errorf("orders canary upstream = %+v, want v2 weight 30", w)
	}
	trace := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	hdr := map[string]string{HeaderTraceparent: trace, HeaderCorrelationID: "corr-1", HeaderSessionID: "sess-1"}
	status, out := getJSON(t, http.MethodPost, d.Entry+"/api/checkout", `{"sku":"sku-1001","qty":1,"amount":12.5}`, hdr)
	if status != http.StatusOK || out["status"] != "confirmed" {
		t.Fatalf("checkout = %d %v", status, out)
	}
	status, out = getJSON(t, http.MethodGet, d.Entry+"/api/products/sku-1003", "", hdr)
	if status != http.StatusOK || out["sku"] != "sku-1003" || out["available"] == nil {
		t.Fatalf("product = %d %v", status, out)
	}

	rf.mu.Lock()
	for _, svc := range []string{"storefront", "orders", "inventory", "payments", "catalog"} {
		hs := rf.seen[svc]
		if len(hs) == 0 {
			t.Errorf("%s front saw no request", svc)
			continue
		}
		h := hs[len(hs)-1]
		if !strings.Contains(h.Get(HeaderTraceparent), "0af7651916cd43dd8448eb211c80319c") || h.Get(HeaderCorrelationID) != "corr-1" || h.Get(HeaderSessionID) != "sess-1" {
			t.Errorf("%s front got traceparent %q correlation %q session %q, want them forwarded", svc, h.Get(HeaderTraceparent), h.Get(HeaderCorrelationID), h.Get(HeaderSessionID))
		}
	}
	rf.mu.Unlock()

	// Hooks reach each service's own sidecar, asynchronously.
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok := rf.hooks["orders"].ops()["orders.create"] > 0 && rf.hooks["payments"].ops()["payments.charge"] > 0 &&
			rf.hooks["catalog"].ops()["tool:inventory.check"] > 0 && rf.hooks["storefront"].ops()["storefront.checkout"] > 0
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hooks missing: orders %v payments %v catalog %v storefront %v", rf.hooks["orders"].ops(), rf.hooks["payments"].ops(), rf.hooks["catalog"].ops(), rf.hooks["storefront"].ops())
		}
		time.Sleep(20 * time.Millisecond)
	}
	sink := rf.hooks["orders"]
	sink.mu.Lock()
	r := sink.got[0]
	if r.GetPreContext().GetSessionId() != "sess-1" || !r.GetResults().GetSuccess() || r.GetResults().GetExecutionTime().AsDuration() <= 0 {
		t.Errorf("orders hook = %v", r)
	}
	sink.mu.Unlock()
}

func TestFaultsToggle(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	d := startTopology(t, Topology{CanaryWeight: 100, Registry: reg})
	f := d.Faults
	checkout := func() int {
		s, _ := getJSON(t, http.MethodPost, d.Instances["orders-v1"]+"/orders", `{"sku":"sku-1002","qty":1,"amount":3}`, nil)
		return s
	}
	// Payments flaky at 100%: every order fails with 502 naming payments.
	f.SetPaymentsFlaky(1)
	status, out := getJSON(t, http.MethodPost, d.Instances["orders-v1"]+"/orders", `{"sku":"sku-1002","qty":1,"amount":3}`, nil)
	if status != http.StatusBadGateway || !strings.Contains(out["error"].(string), "card processor unavailable") {
		t.Fatalf("flaky payments: %d %v", status, out)
	}
	f.SetPaymentsFlaky(0)
	if s := checkout(); s != http.StatusOK {
		t.Fatalf("after payments recovered: %d", s)
	}

	// Inventory slow release adds latency.
	f.SetInventorySlow(150 * time.Millisecond)
	start := time.Now()
	if s, _ := getJSON(t, http.MethodGet, d.Instances["inventory"]+"/inventory/sku-1", "", nil); s != http.StatusOK {
		t.Fatalf("inventory: %d", s)
	}
	if el := time.Since(start); el < 150*time.Millisecond {
		t.Errorf("slow inventory answered in %s, want >= 150ms", el)
	}
	f.SetInventorySlow(0)

	// The canary fault hits v2 only; the splitter sends everything to v2 at weight 100.
	f.SetCanaryErrors(1)
	if s, _ := getJSON(t, http.MethodGet, d.Fronts["orders"]+"/orders/ord-1", "", nil); s != http.StatusInternalServerError {
		t.Errorf("canary v2 through splitter: %d, want 500", s)
	}
	if s, _ := getJSON(t, http.MethodGet, d.Instances["orders-v1"]+"/orders/ord-1", "", nil); s != http.StatusOK {
		t.Errorf("v1 with canary fault: %d, want 200", s)
	}
	f.SetCanaryErrors(0)
	if s, out := getJSON(t, http.MethodGet, d.Fronts["orders"]+"/orders/ord-1", "", nil); s != http.StatusOK || out["version"] != "v2" {
		t.Errorf("canary v2 after fault cleared: %d %v", s, out)
	}

	// Bad input: a clear 400 and nothing else disturbed.
	if s, out := getJSON(t, http.MethodPost, d.Instances["payments"]+"/payments/charge", `{"order_id":`, nil); s != http.StatusBadRequest || out["code"] != "invalid_argument" {
		t.Errorf("bad charge body: %d %v", s, out)
	}
	if got := counter(t, reg, "payments", "payments.charge", "400"); got != 1 {
		t.Errorf("bad input counted %v times, want 1", got)
	}
	if got := counter(t, reg, "payments", "payments.charge", "503"); got != 1 {
		t.Errorf("flaky 503 counted %v times, want 1", got)
	}
}

func TestMCPTools(t *testing.T) {
	t.Parallel()
	d := startTopology(t, Topology{})
	c := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "v0"}, nil)
	cs, err := c.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: d.MCP}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer cs.Close()
	tools, err := cs.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatalf("list tools: %v", err)
	}
	var names []string
	for _, tl := range tools.Tools {
		names = append(names, tl.Name)
	}
	if strings.Join(names, ",") != "catalog.search,inventory.check,payments.refund" {
		t.Errorf("tools = %v", names)
	}
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: ToolCatalogSearch, Arguments: map[string]any{"query": "running"}})
	if err != nil || res.IsError {
		t.Fatalf("catalog.search: %v %v", err, res)
	}
	b, _ := json.Marshal(res.StructuredContent)
	if !strings.Contains(string(b), "trail running shoes") {
		t.Errorf("catalog.search result = %s", b)
	}
	res, err = cs.CallTool(t.Context(), &mcp.CallToolParams{Name: ToolPaymentsRefund, Arguments: map[string]any{"order_id": "ord-1", "amount": 3}})
	if err != nil || res.IsError {
		t.Fatalf("payments.refund: %v %+v", err, res)
	}
	d.Faults.SetToolFailing(1)
	res, err = cs.CallTool(t.Context(), &mcp.CallToolParams{Name: ToolInventoryCheck, Arguments: map[string]any{"sku": "sku-1001"}})
	if err != nil || !res.IsError {
		t.Fatalf("inventory.check with fault: err %v isError %v", err, res != nil && res.IsError)
	}
	d.Faults.SetToolFailing(0)
	res, err = cs.CallTool(t.Context(), &mcp.CallToolParams{Name: ToolInventoryCheck, Arguments: map[string]any{"sku": "sku-1001"}})
	if err != nil || res.IsError {
		t.Fatalf("inventory.check after fault: %v %+v", err, res)
	}
}

func TestTrafficFlows(t *testing.T) {
	t.Parallel()
	d := startTopology(t, Topology{})
	stats := &TrafficStats{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- (Traffic{Target: d.Entry, Rate: 100, Stats: stats, Sessions: 5}).Run(ctx) }()
	// Wait for enough answers rather than for a fixed time: the machine may be busy.
	deadline := time.Now().Add(30 * time.Second)
	for stats.OK.Load()+stats.Failed.Load() < 60 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	by := stats.ByAction()
	if n := stats.OK.Load() + stats.Failed.Load(); n < 60 {
		t.Fatalf("%d answers in 30 s, want at least 60", n)
	}
	if stats.Failed.Load() != 0 {
		t.Errorf("failed %d with no faults: %v", stats.Failed.Load(), by)
	}
	for _, a := range []Action{ActionBrowse, ActionSearch, ActionCheckout} {
		if by[a][0] == 0 {
			t.Errorf("no successful %s in %v", a, by)
		}
	}
}

func TestScheduleRuns(t *testing.T) {
	t.Parallel()
	var f Faults
	var names []string
	s := DefaultSchedule().Scaled(0.0005) // ~90 ms for the whole story
	s.OnStep = func(st Step) { names = append(names, st.Name) }
	if err := s.Run(t.Context(), &f); err != nil {
		t.Fatal(err)
	}
	if len(names) != len(s.Steps) {
		t.Fatalf("ran %d steps, want %d", len(names), len(s.Steps))
	}
	// At the end the flaky, slow and tool faults have cleared; the canary stays bad.
	st := f.State()
	if st.PaymentsErrorRate != 0 || st.InventoryLatency != 0 || st.ToolErrorRate != 0 || st.CanaryErrorRate != 0.5 {
		t.Errorf("final state = %+v", st)
	}
	if err := (Schedule{Steps: []Step{{At: time.Second}}}).Run(t.Context(), &f); err == nil {
		t.Error("schedule with a step without Set: want an error")
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]Config{
		"bad dep":   {Deps: map[string]string{"orders": "ftp://x"}},
		"bad hooks": {HooksURL: "not a url"},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
	if _, err := NewOrders(Config{}); err == nil {
		t.Error("orders without deps: want an error")
	}
}

// counter reads omnibridge_demo_requests_total for one label set.
func counter(t *testing.T, reg *prometheus.Registry, service, op, status string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "omnibridge_demo_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["service"] == service && l["operation"] == op && l["status"] == status {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
