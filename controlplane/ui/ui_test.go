package ui

import (
	"fmt"
	"github.com/omninode/bridge/internal/browsertest"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

func TestHandlerServesFiles(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		path, ctype string
		status      int
		contains    string
	}{
		{"/ui/", "text/html; charset=utf-8", 200, `<script type="module" src="app.js">`},
		{"/ui/index.html", "text/html; charset=utf-8", 200, "OmniNode Bridge"},
		{"/ui/app.js", "text/javascript; charset=utf-8", 200, "IntelligenceService"},
		{"/ui/connect.js", "text/javascript; charset=utf-8", 200, "application/connect+json"},
		{"/ui/style.css", "text/css; charset=utf-8", 200, "--accent"},
		{"/ui/favicon.svg", "image/svg+xml", 200, "<svg"},
		{"/ui/missing.js", "", 404, ""},
		{"/ui/../ui.go", "", 404, ""},
		{"/ui", "", 301, ""},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, err := noRedirect.Get(srv.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status != 200 {
				return
			}
			if got := resp.Header.Get("Content-Type"); got != tc.ctype {
				t.Errorf("content type %q, want %q", got, tc.ctype)
			}
			if resp.Header.Get("Cache-Control") != "no-cache" || resp.Header.Get("ETag") == "" {
				t.Errorf("cache headers: %q %q", resp.Header.Get("Cache-Control"), resp.Header.Get("ETag"))
			}
			if !strings.Contains(string(b), tc.contains) {
				t.Errorf("body lacks %q", tc.contains)
			}
			if strings.Contains(string(b), "https://") && !strings.HasSuffix(tc.path, ".svg") {
				// Nothing is fetched from elsewhere: no absolute URLs to other origins.
				t.Errorf("%s refers to an https URL", tc.path)
			}
			// A revalidation with the ETag gets 304.
			req, _ := http.NewRequest(http.MethodGet, srv.URL+tc.path, nil)
			req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
			r2, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			r2.Body.Close()
			if r2.StatusCode != http.StatusNotModified {
				t.Errorf("revalidation status %d, want 304", r2.StatusCode)
			}
		})
	}
	resp, err := http.Post(srv.URL+"/ui/", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST status %d, want 405", resp.StatusCode)
	}
}

// browser wraps internal/browsertest. Console errors count as page
// failures, except the 503s the fake backend answers on purpose.
type browser struct {
	*browsertest.Browser
	t *testing.T
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	return &browser{browsertest.New(t, browsertest.Options{PageError: func(m chromedp.ConsoleMessage) bool {
		return m.IsException() || m.Type == chromedp.ConsoleError && !strings.Contains(m.Text, "503")
	}}), t}
}

func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) { b.Do(steps...) }

// waitJS waits until a JavaScript expression is truthy.
func (b *browser) waitJS(what, expr string) { b.WaitJS(what, expr, 30*time.Second) }

func (b *browser) eval(expr string) string { return b.Eval(expr) }

// screenshot checks the page does not scroll sideways at 1366 px (usable on
// a laptop screen), then saves it.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	if w := b.eval(`String(document.documentElement.scrollWidth <= window.innerWidth)`); w != "true" {
		b.t.Errorf("%s: the page scrolls horizontally at 1366 px", name)
	}
	b.Screenshot(name)
}

func TestDashboardInBrowser(t *testing.T) {
	api := newFakeAPI()
	srv := httptest.NewServer(api.mux())
	// Registered before the browser's cleanup so it runs after it: the tap
	// stream ends when the browser goes.
	t.Cleanup(srv.Close)
	b := newBrowser(t)

	// Graph: every demo service is drawn, with live edge figures.
	b.do(chromedp.Navigate(srv.URL + "/ui/"))
	b.waitJS("graph nodes", `document.querySelectorAll('svg.graph g.node').length === 6`)
	for _, svc := range []string{"edge", "storefront", "orders", "inventory", "payments", "catalog"} {
		if n := b.eval(fmt.Sprintf(`String(document.querySelectorAll('g.node[data-service=%q]').length)`, svc)); n != "1" {
			t.Errorf("graph has %s nodes for %s, want 1", n, svc)
		}
	}
	if got := b.eval(`document.querySelector('path.edge[data-source="orders"][data-target="payments"]').getAttribute('class')`); got != "edge edge-bad" {
		t.Errorf("orders→payments edge class %q, want edge edge-bad (31%% errors)", got)
	}
	if got := b.eval(`document.querySelector('.edge-labels').textContent`); !strings.Contains(got, "3.6/s · 31%p99 22 ms") {
		t.Errorf("edge labels lack orders→payments figures: %q", got)
	}
	b.screenshot("graph")

	// Routes: the table with a sparkline per route, refreshed by polling.
	b.do(chromedp.Click(chromedp.CSS(`nav a[data-view="routes"]`)))
	b.waitJS("route sparklines", `document.querySelectorAll('#routes-table polyline.spark-line').length === 3`)
	b.screenshot("routes")

	// Recommendations: Apply enforces, then Rollback rolls back.
	b.do(chromedp.Click(chromedp.CSS(`nav a[data-view="recommendations"]`)))
	b.waitJS("recommendations", `document.querySelectorAll('#recs [data-rec-id]').length === 2`)
	if ev := b.eval(`document.querySelector('[data-rec-id="rec-1"] .kv').textContent`); !strings.Contains(ev, "error_rate0.31") {
		t.Errorf("evidence not shown: %q", ev)
	}
	b.do(chromedp.Click(chromedp.CSS(`[data-rec-id="rec-1"] button[data-action="apply"]`)))
	b.waitJS("enforced state", `document.querySelector('[data-rec-id="rec-1"] .rec-state')?.textContent === 'enforced'`)
	b.screenshot("recommendations-applied")
	b.do(chromedp.Click(chromedp.CSS(`[data-rec-id="rec-1"] button[data-action="rollback"]`)))
	b.waitJS("rolled back state", `document.querySelector('[data-rec-id="rec-1"] .rec-state')?.textContent === 'rolled back'`)
	b.do(chromedp.Click(chromedp.CSS(`[data-rec-id="rec-2"] button[data-action="reject"]`)))
	b.waitJS("rejected state", `document.querySelector('[data-rec-id="rec-2"] .rec-state')?.textContent === 'rejected'`)
	api.mu.Lock()
	calls := strings.Join(api.calls, "; ")
	api.mu.Unlock()
	if calls != "Apply rec-1 DIRECTIVE_MODE_ENFORCE; Rollback rec-1; Reject rec-2" {
		t.Errorf("admin calls = %q", calls)
	}

	// Rollout: per-sidecar sync state, with the rejection reason.
	b.do(chromedp.Click(chromedp.CSS(`nav a[data-view="rollout"]`)))
	b.waitJS("status table", `document.querySelectorAll('#status-table tbody tr').length === 3`)
	if got := b.eval(`document.querySelector('#status-table').textContent`); !strings.Contains(got, "retry.budget_ratio 0.9 > 0.5") || !strings.Contains(got, "REJECTED") {
		t.Errorf("rollout table lacks the rejection: %q", got)
	}
	b.screenshot("rollout")

	// MCP tools: drift history of inventory.check.
	b.do(chromedp.Click(chromedp.CSS(`nav a[data-view="tools"]`)))
	b.waitJS("tools", `document.querySelectorAll('#tools-table tbody tr').length === 2`)
	if got := b.eval(`document.querySelector('[data-tool="catalog/inventory.check"]').textContent`); !strings.Contains(got, "drift: 2 versions") || !strings.Contains(got, "degraded") {
		t.Errorf("tool row lacks drift or degradation: %q", got)
	}
	b.do(chromedp.Click(chromedp.CSS(`[data-tool="catalog/inventory.check"] details summary`)))
	b.screenshot("tools")

	// Patterns: the backend fails; the page shows the Connect code and message.
	b.do(chromedp.Click(chromedp.CSS(`nav a[data-view="patterns"]`)))
	b.waitJS("error box", `document.querySelector('.msg-error .err-code')?.textContent === 'unavailable'`)
	if got := b.eval(`document.querySelector('.msg-error').textContent`); !strings.Contains(got, "pattern store is down") {
		t.Errorf("error box = %q", got)
	}
	b.screenshot("patterns-error")

	// Tap: the first stream fails (shown with its code), the page
	// reconnects, and streamed events arrive and keep arriving.
	api.mu.Lock()
	api.tapFails = 1
	api.mu.Unlock()
	b.do(chromedp.Click(chromedp.CSS(`nav a[data-view="tap"]`)))
	b.waitJS("tap error", `document.querySelector('.view-tap .msg-error .err-code')?.textContent === 'unavailable'`)
	b.waitJS("tap events", `document.querySelectorAll('#tap-list li[data-topic]').length >= 8`)
	if got := b.eval(`document.querySelector('#tap-list').textContent`); !strings.Contains(got, "tool inventory.check") || !strings.Contains(got, "orders → POST /payments/charge 503") {
		t.Errorf("tap lacks the streamed events: %q", got)
	}
	b.screenshot("tap")
	b.do(chromedp.Click(chromedp.CSS(`#tap-stop`)))
	b.waitJS("tap stopped", `document.querySelector('#tap-state').textContent === 'stopped'`)

	// The token is stored in the browser and sent as a bearer token.
	b.do(chromedp.SetValue(chromedp.CSS(`#token`), "s3cret"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#token').dispatchEvent(new Event('change'))`))
	b.do(chromedp.Click(chromedp.CSS(`nav a[data-view="graph"]`)))
	b.waitJS("graph again", `document.querySelectorAll('svg.graph g.node').length === 6`)
	deadline := time.Now().Add(15 * time.Second)
	for {
		api.mu.Lock()
		last := api.auth[len(api.auth)-1]
		api.mu.Unlock()
		if last == "Bearer s3cret" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("last Authorization header %q, want Bearer s3cret", last)
		}
		time.Sleep(50 * time.Millisecond)
	}

	if f := b.Failures(); len(f) > 0 {
		t.Errorf("page errors:\n%s", strings.Join(f, "\n"))
	}
}

func TestDashboardEmptyStates(t *testing.T) {
	api := newFakeAPI()
	api.empty = true
	srv := httptest.NewServer(api.mux())
	// Registered before the browser's cleanup so it runs after it: the tap
	// stream ends when the browser goes.
	t.Cleanup(srv.Close)
	b := newBrowser(t)
	b.do(chromedp.Navigate(srv.URL + "/ui/"))
	for _, tc := range []struct{ view, text string }{
		{"graph", "No services seen yet."},
		{"routes", "No route statistics in this window."},
		{"patterns", "No failure patterns detected."},
		{"recommendations", "No recommendations yet."},
		{"rollout", "No sidecars connected."},
		{"tools", "No MCP tools registered."},
	} {
		b.do(chromedp.Click(chromedp.CSS(fmt.Sprintf(`nav a[data-view=%q]`, tc.view))))
		b.waitJS(tc.view+" empty state", fmt.Sprintf(`document.querySelector('#view .msg-empty')?.textContent.startsWith(%q)`, tc.text))
	}
	b.screenshot("empty-tools")
	// The tap waits for events without failing.
	b.do(chromedp.Click(chromedp.CSS(`nav a[data-view="tap"]`)))
	b.waitJS("tap waiting", `document.querySelector('#tap-state')?.textContent === 'live'`)
	if f := b.Failures(); len(f) > 0 {
		t.Errorf("page errors:\n%s", strings.Join(f, "\n"))
	}
}
