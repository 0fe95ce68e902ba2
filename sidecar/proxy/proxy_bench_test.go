package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"github.com/omninode/bridge/sidecar/redact"
)

type countSink struct{ n int }

func (c *countSink) Emit(bus.Event) { c.n++ }

// BenchmarkProxy measures the request path (1 KiB bodies, keep-alive,
// emission to an in-memory sink) against a local upstream.
func BenchmarkProxy(b *testing.B) {
	body := strings.Repeat("x", 1024)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = w.Write([]byte(body))
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	red, err := redact.New(redact.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Service, cfg.Upstream, cfg.Redactor = "orders", u, red
	cfg.Source = bus.NewSource(&bridgev1.Source{Service: "orders", Instance: "i"}, 0)
	sink := &countSink{}
	cfg.Sink = sink
	p, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	front := httptest.NewServer(p)
	defer front.Close()
	cl := front.Client()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := cl.Post(front.URL+"/orders/123", "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
