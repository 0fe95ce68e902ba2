package faults

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// badProxyRequests are malformed HTTP/1.1 requests sent raw to the proxy
// port, each with the status the sidecar must answer and the reason it
// counts it under in requests_rejected_total: the proxy's own check
// (cl_and_te) or Go's HTTP parser, which answers before the proxy sees the
// request (counted at the connection, sidecar/proxy/refusal.go).
var badProxyRequests = []struct {
	name   string
	raw    string
	status int
	reason string
}{
	{"garbage request line", "\x16\x03\x01 garbage\r\n\r\n", 400, "bad_request"},
	{"invalid header name", "GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n", 400, "bad_request"},
	{"two content lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc", 400, "bad_request"},
	{"content-length and chunked (smuggling)", "POST /orders/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "cl_and_te"},
	{"huge header", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 80<<10) + "\r\n\r\n", 431, "headers_too_large"},
	{"unsupported transfer coding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501, "not_implemented"},
	{"unsupported HTTP version", "GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505, "unsupported_version"},
}

// badHooks are malformed hook calls; every one must be refused and counted
// in omnibridge_hooks_rejected_total.
var badHooks = []struct {
	name, method, path, ctype, body string
	status                          int
}{
	{"not json", "POST", "/v1/hooks/lifecycle", "application/json", `{"event_type":`, 400},
	{"unknown field", "POST", "/v1/hooks/execution", "application/json", `{"nope":1}`, 400},
	{"wrong content type", "POST", "/v1/hooks/lifecycle", "text/plain", `hello`, 415},
	{"wrong method", "PUT", "/v1/hooks/execution", "application/json", `{}`, 405},
	{"too large", "POST", "/v1/hooks/execution", "application/json", `{"x":"` + strings.Repeat("a", 2<<20) + `"}`, 413},
	{"connect garbage protobuf", "POST", "/omninode.bridge.v1.HookService/ReportLifecycle", "application/proto", "\xff\xff\xff\xff\x0f", 400},
}

// TestBadInputFlood: while good traffic flows through the proxy, a flood of
// malformed requests hits the proxy port and malformed hooks hit the hook
// receiver. Every bad one gets a clear 4xx or 5xx and is counted exactly
// once under its reason (those Go's HTTP parser refuses included), none
// becomes an event, and the good traffic has no error and loses no event.
func TestBadInputFlood(t *testing.T) {
	noLeaks(t)
	r := newRig(t, "accounts", nil, 200)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var proxySent, hookSent atomic.Int64
	proxyByReason := map[string]*atomic.Int64{}
	for _, b := range badProxyRequests {
		proxyByReason[b.reason] = new(atomic.Int64)
	}
	var mu sync.Mutex
	var wrong []string
	note := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(wrong) < 10 {
			wrong = append(wrong, fmt.Sprintf(format, args...))
		}
	}
	for i := range badProxyRequests {
		wg.Go(func() {
			b := badProxyRequests[i]
			for ctx.Err() == nil {
				status, err := rawRequest(r.sc.proxy, b.raw)
				proxySent.Add(1)
				proxyByReason[b.reason].Add(1)
				if err != nil || status != b.status {
					note("proxy %s: status %d, err %v; want %d", b.name, status, err, b.status)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	cl := &http.Client{Timeout: 5 * time.Second}
	for i := range badHooks {
		wg.Go(func() {
			b := badHooks[i]
			for ctx.Err() == nil {
				req, _ := http.NewRequest(b.method, "http://"+r.sc.hooks+b.path, strings.NewReader(b.body))
				req.Header.Set("Content-Type", b.ctype)
				resp, err := cl.Do(req)
				hookSent.Add(1)
				if err != nil {
					note("hook %s: %v", b.name, err)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != b.status {
					note("hook %s: status %d, want %d", b.name, resp.StatusCode, b.status)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	time.Sleep(5 * time.Second)
	cancel()
	wg.Wait()
	cl.CloseIdleConnections()

	led := busAccount(t, "bad input flood (proxy, hooks)", r.load.stopped(), r.col, r.w, r.sc)
	m := metrics(t, "http://"+r.sc.admin+"/metrics")
	rejectedProxy := int64(sum(m, "omnibridge_sidecar_requests_rejected_total"))
	rejectedHooks := int64(sum(m, "omnibridge_hooks_rejected_total"))
	led.note = fmt.Sprintf("bad proxy %d (counted %d), bad hooks %d (counted %d)",
		proxySent.Load(), rejectedProxy, hookSent.Load(), rejectedHooks)
	led.check(t)
	for _, w := range wrong {
		t.Error(w)
	}
	if n := r.load.failed.Load() + r.load.non2xx.Load(); n != 0 {
		t.Errorf("%d good requests failed during the flood", n)
	}
	if rejectedProxy != proxySent.Load() {
		t.Errorf("proxy counted %d rejections, %d bad requests were sent", rejectedProxy, proxySent.Load())
	}
	for reason, sent := range proxyByReason {
		got := int64(m[`omnibridge_sidecar_requests_rejected_total{reason="`+reason+`"}`])
		if got != sent.Load() {
			t.Errorf("proxy counted %d rejections with reason %s, %d were sent", got, reason, sent.Load())
		}
	}
	if rejectedHooks != hookSent.Load() {
		t.Errorf("hook receiver counted %d rejections, %d bad hooks were sent", rejectedHooks, hookSent.Load())
	}
}

// rawRequest writes raw to addr on a fresh connection and returns the
// response's status.
func rawRequest(addr, raw string) (int, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.Copy(c, bytes.NewReader([]byte(raw))); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
