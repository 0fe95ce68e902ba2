package faults

import (
	"bytes"
	"context"
	"crypto/tls"
	enc "encoding/binary"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omninode/bridge/internal/bus"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/net/http2"
)

// connectFrame is one Connect streaming envelope (flags 0) around payload.
func connectFrame(payload []byte) []byte {
	b := make([]byte, 5+len(payload))
	enc.BigEndian.PutUint32(b[1:], uint32(len(payload)))
	copy(b[5:], payload)
	return b
}

// cpBadCall is one kind of malformed call to a control-plane entry point.
type cpBadCall struct {
	name   string
	h2     bool // the directive stream is HTTP/2 only
	method string
	url    func(api, webhook string) string
	ctype  string
	body   []byte
	ok     func(status int) bool
	// rejected is the omnibridge_controlplane_rpc_rejected_total series
	// that counts the call (the webhook has its own metric).
	rejected string
}

func is4xx(s int) bool { return s >= 400 && s < 500 }

// rejectedSeries names a series of omnibridge_controlplane_rpc_rejected_total
// as /metrics prints it (labels in name order).
func rejectedSeries(code, entry, procedure string) string {
	return fmt.Sprintf(`omnibridge_controlplane_rpc_rejected_total{code=%q,entry=%q,procedure=%q}`, code, entry, procedure)
}

var cpBadCalls = []cpBadCall{
	{name: "directive stream: garbage frame", h2: true, method: "POST",
		url:   func(api, _ string) string { return api + "/omninode.bridge.v1.DirectiveService/Sync" },
		ctype: "application/connect+proto", body: connectFrame([]byte("\xff\xff\xff\xff garbage")),
		ok:       func(s int) bool { return s == 200 || is4xx(s) }, // Connect streams report errors in the end frame
		rejected: rejectedSeries("invalid_argument", "directive", "/omninode.bridge.v1.DirectiveService/Sync")},
	{name: "directive stream: truncated frame", h2: true, method: "POST",
		url:   func(api, _ string) string { return api + "/omninode.bridge.v1.DirectiveService/Sync" },
		ctype: "application/connect+proto", body: []byte{0, 0, 0, 1, 0, 1, 2},
		ok:       func(s int) bool { return s == 200 || is4xx(s) },
		rejected: rejectedSeries("internal", "directive", "/omninode.bridge.v1.DirectiveService/Sync")}, // a protocol error
	{name: "API: bad JSON", method: "POST",
		url:   func(api, _ string) string { return api + "/omninode.bridge.v1.IntelligenceService/ListServices" },
		ctype: "application/json", body: []byte(`{"limit":`), ok: is4xx,
		rejected: rejectedSeries("invalid_argument", "api", "/omninode.bridge.v1.IntelligenceService/ListServices")},
	{name: "API: bad protobuf", method: "POST",
		url:   func(api, _ string) string { return api + "/omninode.bridge.v1.IntelligenceService/GetStatus" },
		ctype: "application/proto", body: []byte("\xff\xff\xff"), ok: is4xx,
		rejected: rejectedSeries("invalid_argument", "api", "/omninode.bridge.v1.IntelligenceService/GetStatus")},
	{name: "API: unknown procedure", method: "POST",
		url:   func(api, _ string) string { return api + "/omninode.bridge.v1.IntelligenceService/DropTables" },
		ctype: "application/json", body: []byte(`{}`), ok: is4xx,
		rejected: rejectedSeries("unimplemented", "api", "unknown")},
	{name: "admin API: bad JSON", method: "POST",
		url:   func(api, _ string) string { return api + "/omninode.bridge.v1.AdminService/Rollback" },
		ctype: "application/json", body: []byte(`[1,2`), ok: is4xx,
		rejected: rejectedSeries("invalid_argument", "admin", "/omninode.bridge.v1.AdminService/Rollback")},
	{name: "admin API: wrong content type", method: "POST",
		url:   func(api, _ string) string { return api + "/omninode.bridge.v1.AdminService/Rollback" },
		ctype: "text/plain", body: []byte(`id=1`), ok: is4xx, // 415, which clients read as unknown
		rejected: rejectedSeries("unknown", "admin", "/omninode.bridge.v1.AdminService/Rollback")},
	{name: "webhook: not JSON", method: "POST",
		url:   func(_, wh string) string { return wh + "/" },
		ctype: "application/json", body: []byte(`{"kind":`), ok: is4xx},
	{name: "webhook: not an AdmissionReview", method: "POST",
		url:   func(_, wh string) string { return wh + "/" },
		ctype: "application/json", body: []byte(`{"apiVersion":"v1","kind":"Pod"}`), ok: is4xx},
	{name: "webhook: wrong method", method: "GET",
		url:   func(_, wh string) string { return wh + "/" },
		ctype: "application/json", ok: is4xx},
}

// TestControlPlaneBadInputFlood: while good traffic flows (events through
// the bus into PostgreSQL, sidecars on their directive streams, the query
// API answering), a flood of bad input hits every control-plane entry
// point: garbage records on the bus, garbage frames on the directive
// stream, bad API requests, malformed AdmissionReviews. Each bad call gets
// a clear error and is counted (bad records dead-lettered, refused calls in
// omnibridge_controlplane_rpc_rejected_total, malformed reviews in the
// injector's metric), and the good traffic loses nothing and is not
// counted as refused.
func TestControlPlaneBadInputFlood(t *testing.T) {
	noLeaks(t)
	whAddr := freePort(t)
	cert, key := selfSigned(t)
	r := newCPRigWith(t, 1, cpDeps{}, []string{"--webhook-listen", whAddr, "--webhook-cert", cert, "--webhook-key", key}, true)
	cp := r.cps[0]
	waitServerStreams(t, cp, 2, 10*time.Second)
	probe := startAPIProbe(t, cp.url())
	api, wh := cp.url(), "https://"+whAddr

	h1 := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // the test's own self-signed webhook certificate
	}}
	h2c := &http.Client{Timeout: 5 * time.Second, Transport: &http2.Transport{AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (netConn, error) {
			var d netDialer
			return d.DialContext(ctx, network, addr)
		}}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var wrong []string
	sent := make([]atomic.Int64, len(cpBadCalls))
	for i, c := range cpBadCalls {
		wg.Go(func() {
			cl := h1
			if c.h2 {
				cl = h2c
			}
			for ctx.Err() == nil {
				req, _ := http.NewRequest(c.method, c.url(api, wh), bytes.NewReader(c.body))
				req.Header.Set("Content-Type", c.ctype)
				resp, err := cl.Do(req)
				sent[i].Add(1)
				status := 0
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
				if err != nil || !c.ok(status) {
					mu.Lock()
					if len(wrong) < 10 {
						wrong = append(wrong, fmt.Sprintf("%s: status %d, err %v", c.name, status, err))
					}
					mu.Unlock()
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	// Garbage records on the bus, in every event topic.
	var badRecords atomic.Int64
	prod, err := kgo.NewClient(kgo.SeedBrokers(r.kafka.Brokers()...), kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			rec := &kgo.Record{Topic: bus.Topics[i%len(bus.Topics)], Value: []byte("not a protobuf event " + strings.Repeat("!", i%50))}
			if err := prod.ProduceSync(ctx, rec).FirstErr(); err == nil {
				badRecords.Add(1)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	time.Sleep(5 * time.Second)
	cancel()
	wg.Wait()
	prod.Close()
	h1.CloseIdleConnections()
	h2c.CloseIdleConnections()
	ok, failed := probe.stop()

	led := pgAccount(t, "bad input flood (bus, stream, APIs, webhook)", r.load.stopped(), r.pg.DSN(), r.w, r.scs...)
	// Wait for the control plane to dead-letter every garbage record.
	var deadLetters float64
	deadline := time.Now().Add(15 * time.Second)
	for {
		deadLetters = sum(metrics(t, cp.url()+"/metrics"), "omnibridge_ingest_dead_letters_total")
		if int64(deadLetters) >= badRecords.Load() || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	m := metrics(t, cp.url()+"/metrics")
	// Every refused call is counted once, in its series; nothing else is
	// (the good streams and the API probe ran all along). Calls are counted
	// as the server finishes them, which can be just after the client has
	// its answer.
	want := map[string]float64{}
	var wantTotal, wantMalformed float64
	for i, c := range cpBadCalls {
		if c.rejected != "" {
			want[c.rejected] += float64(sent[i].Load())
			wantTotal += float64(sent[i].Load())
		} else {
			wantMalformed += float64(sent[i].Load())
		}
	}
	counted := func(m map[string]float64) bool {
		for k, v := range want {
			if m[k] != v {
				return false
			}
		}
		return sum(m, "omnibridge_controlplane_rpc_rejected_total") == wantTotal
	}
	for deadline := time.Now().Add(10 * time.Second); !counted(m) && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		m = metrics(t, cp.url()+"/metrics")
	}
	var calls []string
	for i, c := range cpBadCalls {
		calls = append(calls, fmt.Sprintf("%s=%d", strings.SplitN(c.name, ":", 2)[0], sent[i].Load()))
	}
	led.note = fmt.Sprintf("bad records %d (dead-lettered %v); bad calls %s; refused calls counted %v of %v; webhook malformed counted %v; API probe ok %d failed %d",
		badRecords.Load(), deadLetters, strings.Join(calls, " "), sum(m, "omnibridge_controlplane_rpc_rejected_total"), wantTotal,
		m[`omnibridge_inject_admissions_total{result="malformed"}`], ok, failed)
	led.check(t)
	for _, w := range wrong {
		t.Error(w)
	}
	if n := r.load.failed.Load() + r.load.non2xx.Load(); n != 0 {
		t.Errorf("%d good requests failed during the flood", n)
	}
	if failed != 0 || ok == 0 {
		t.Errorf("query API during the flood: %d answered, %d failed (last: %v)", ok, failed, probe.lastErr.Load())
	}
	if int64(deadLetters) != badRecords.Load() {
		t.Errorf("%d garbage records produced, %v dead-lettered", badRecords.Load(), deadLetters)
	}
	waitServerStreams(t, cp, 2, 5*time.Second) // the good streams survived the garbage ones
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v (one per bad call sent)", k, m[k], v)
		}
	}
	if n := sum(m, "omnibridge_controlplane_rpc_rejected_total"); n != wantTotal {
		t.Errorf("omnibridge_controlplane_rpc_rejected_total sums to %v, want %v: calls other than the bad ones were counted", n, wantTotal)
	}
	if n := m[`omnibridge_inject_admissions_total{result="malformed"}`]; n != wantMalformed {
		t.Errorf("malformed AdmissionReviews counted %v, want %v", n, wantMalformed)
	}
}
