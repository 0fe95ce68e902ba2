package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
)

// BenchmarkReverseProxyFloor is BenchmarkProxy's setup (client, front
// server, upstream, 1 KiB bodies, keep-alive) through a plain
// httputil.ReverseProxy: the floor the sidecar's request path is compared
// with (its allocations per request minus these are the sidecar's own).
func BenchmarkReverseProxyFloor(b *testing.B) {
	body := strings.Repeat("x", 1024)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = w.Write([]byte(body))
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}
	front := httptest.NewServer(rp)
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
