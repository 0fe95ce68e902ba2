package faults

import (
	"bytes"
	"context"
	"crypto/tls"
	enc "encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
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
}

func is4xx(s int) bool { return s >= 400 && s < 500 }

var cpBadCalls = []cpBadCall{
	{name: "directive stream: garbage frame", h2: true, method: "POST",
		url:   func(api, _ string) string { return api + "/omninode.bridge.v1.DirectiveService/Sync" },
		ctype: "application/connect+proto", body: connectFrame([]byte("\xff\xff\xff\xff garbage")),
		ok: func(s int) bool { return s == 200 || is4xx(s) }}, // Connect streams report errors in the end frame
	{name: "directive stream: truncated frame", h2: true, method: "POST",
		url:   func(api, _ string) string { return api + "/omninode.bridge.v1.DirectiveService/Sync" },
		ctype: "application/connect+proto", body: []byte{0, 0, 0, 1, 0, 1, 2},
		ok: func(s int) bool { return s == 200 || is4xx(s) }},
	{name: "API: bad JSON", method: "POST",
		url:   func(api, _ string) string { return api + "/omninode.bridge.v1.IntelligenceService/ListServices" },
		ctype: "application/json", body: []byte(`{"limit":`), ok: is4xx},
	{name: "API: bad protobuf", method: "POST",
		url:   func(api, _ string) string { return api + "/omninode.bridge.v1.IntelligenceService/GetStatus" },
		ctype: "application/proto", body: []byte("\xff\xff\xff"), ok: is4xx},
	{name: "admin API: bad JSON", method: "POST",
		url:   func(api, _ string) string { return api + "/omninode.bridge.v1.AdminService/Rollback" },
		ctype: "application/json", body: []byte(`[1,2`), ok: is4xx},
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
// a clear error, bad records are dead-lettered and counted, and the good
// traffic loses nothing.
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
	var calls []string
	for i, c := range cpBadCalls {
		calls = append(calls, fmt.Sprintf("%s=%d", strings.SplitN(c.name, ":", 2)[0], sent[i].Load()))
	}
	led.note = fmt.Sprintf("bad records %d (dead-lettered %v); bad calls %s; stream bad msgs counted %v; webhook malformed counted %v; API probe ok %d failed %d",
		badRecords.Load(), deadLetters, strings.Join(calls, " "), sum(m, "omnibridge_directives_bad_messages_total"),
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
	if os.Getenv("OMNIBRIDGE_FAULTS_KNOWN_GAPS") == "1" {
		// KNOWN GAP (docs/guarantees.md): refused before a handler runs,
		// these are answered with a clear error but not counted.
		if n := sum(m, "omnibridge_directives_bad_messages_total"); n == 0 {
			t.Error("garbage directive-stream frames were not counted")
		}
		if n := m[`omnibridge_inject_admissions_total{result="malformed"}`]; n == 0 {
			t.Error("malformed AdmissionReviews were not counted in the control plane's metrics")
		}
	}
}
