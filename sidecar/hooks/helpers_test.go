package hooks

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
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

const service = "orders"

// testSink collects events.
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

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// lockedBuffer is a log sink safe for concurrent writes.
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
	srv   *Server
	sink  *testSink
	reg   *prometheus.Registry
	logs  *lockedBuffer
	clock *fakeClock
	http  *httptest.Server
}

// newEnv starts a Server behind a real HTTP server speaking HTTP/1.1 and
// cleartext HTTP/2 (for gRPC). mod adjusts the config.
func newEnv(t testing.TB, mod func(*Config)) *env {
	t.Helper()
	e := &env{sink: &testSink{}, reg: prometheus.NewRegistry(), logs: &lockedBuffer{},
		clock: &fakeClock{t: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}}
	cfg := DefaultConfig(service)
	cfg.Registry = e.reg
	cfg.Logger = slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.Now = e.clock.Now
	if mod != nil {
		mod(&cfg)
	}
	red, err := redact.New(redact.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	src := bus.NewSource(&bridgev1.Source{Service: service, Instance: "sidecar-test-1"}, 0)
	e.srv, err = New(cfg, src, e.sink, red)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.http = httptest.NewUnstartedServer(e.srv.Handler())
	e.http.Config.Protocols = new(http.Protocols)
	e.http.Config.Protocols.SetHTTP1(true)
	e.http.Config.Protocols.SetUnencryptedHTTP2(true)
	e.http.Start()
	t.Cleanup(e.http.Close)
	return e
}

// h2cClient speaks cleartext HTTP/2 only (what gRPC needs).
func h2cClient() *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// post sends a JSON hook and returns status and body.
func (e *env) post(t testing.TB, path, body string, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.http.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.http.Client().Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (e *env) rejected(t testing.TB, reason string) float64 {
	return e.metric(t, `omnibridge_hooks_rejected_total{reason="`+reason+`"}`)
}

// metric returns the value of one series (name with labels as exposed).
func (e *env) metric(t testing.TB, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(e.metricsText(t), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", series, err)
			}
			return f
		}
	}
	t.Fatalf("metric %s not exposed", series)
	return 0
}

// metricsText renders the registry as the /metrics endpoint would.
func (e *env) metricsText(t testing.TB) string {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(e.reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}
