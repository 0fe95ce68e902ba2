package mcp

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"github.com/omninode/bridge/sidecar/redact"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const service = "inventory-mcp"

type testSink struct {
	mu     sync.Mutex
	events []bus.Event
}

func (s *testSink) Emit(ev bus.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, ev)
}

func (s *testSink) all() []bus.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]bus.Event(nil), s.events...)
}

func (s *testSink) tools() []*bridgev1.ToolRegistrationEvent {
	var out []*bridgev1.ToolRegistrationEvent
	for _, ev := range s.all() {
		if t, ok := ev.(*bridgev1.ToolRegistrationEvent); ok {
			out = append(out, t)
		}
	}
	return out
}

func (s *testSink) calls() []*bridgev1.ExecutionIntelligenceEvent {
	var out []*bridgev1.ExecutionIntelligenceEvent
	for _, ev := range s.all() {
		if t, ok := ev.(*bridgev1.ExecutionIntelligenceEvent); ok {
			out = append(out, t)
		}
	}
	return out
}

// waitFor polls until cond holds or fails the test after 10 s: capture is
// asynchronous by design.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type env struct {
	cap   *Capture
	sink  *testSink
	reg   *prometheus.Registry
	logs  *lockedBuffer
	front *httptest.Server // the stand-in proxy with capture in front
}

// newEnv puts a reverse proxy with capture in front of upstream.
func newEnv(t testing.TB, upstream http.Handler, mod func(*Config)) *env {
	t.Helper()
	e := &env{sink: &testSink{}, reg: prometheus.NewRegistry(), logs: &lockedBuffer{}}
	cfg := DefaultConfig(service)
	cfg.Registry = e.reg
	cfg.Logger = slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if mod != nil {
		mod(&cfg)
	}
	red, err := redact.New(redact.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	src := bus.NewSource(&bridgev1.Source{Service: service, Instance: "sidecar-mcp-1"}, 0)
	e.cap, err = NewCapture(cfg, src, e.sink, red)
	if err != nil {
		t.Fatalf("NewCapture: %v", err)
	}
	up := httptest.NewServer(upstream)
	t.Cleanup(up.Close)
	target, _ := url.Parse(up.URL)
	proxy := &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		FlushInterval: -1,
	}
	e.front = httptest.NewServer(e.cap.Wrap(proxy))
	t.Cleanup(e.front.Close)
	return e
}

func (e *env) metricsText(t testing.TB) string {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(e.reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}

func (e *env) metric(t testing.TB, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(e.metricsText(t), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("metric %s not exposed", series)
	return 0
}
