package proxy

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"github.com/omninode/bridge/sidecar/policy"
	"github.com/omninode/bridge/sidecar/redact"
	"google.golang.org/protobuf/types/known/timestamppb"
)

type eventSink struct {
	mu  sync.Mutex
	evs []*bridgev1.CommunicationIntelligenceEvent
}

func (s *eventSink) Emit(ev bus.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evs = append(s.evs, ev.(*bridgev1.CommunicationIntelligenceEvent))
}

func (s *eventSink) events() []*bridgev1.CommunicationIntelligenceEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.evs)
}

// seqRig is a proxy with an in-memory sink in front of upstream.
func seqRig(t *testing.T, upstream http.Handler, pol *policy.Engine) (*eventSink, *bus.Source, string) {
	t.Helper()
	return seqRigWith(t, upstream, pol, nil)
}

func seqRigWith(t *testing.T, upstream http.Handler, pol *policy.Engine, mw func(http.Handler) http.Handler) (*eventSink, *bus.Source, string) {
	t.Helper()
	up := httptest.NewServer(upstream)
	t.Cleanup(up.Close)
	u, _ := url.Parse(up.URL)
	red, err := redact.New(redact.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Service, cfg.Upstream, cfg.Redactor, cfg.Policy, cfg.Middleware = "orders", u, red, pol, mw
	cfg.Source = bus.NewSource(&bridgev1.Source{Service: "orders", Instance: "i"}, 0)
	sink := &eventSink{}
	cfg.Sink = sink
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(p)
	t.Cleanup(front.Close)
	return sink, cfg.Source, front.URL
}

// client is a client of its own: httptest servers closing in parallel
// tests close the default transport's idle connections.
func client(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// TestSequenceReservedAtArrival: an event's sequence number is taken when
// the request arrives, before the upstream answers, so that a crash after
// the response leaves a gap that counts the event.
func TestSequenceReservedAtArrival(t *testing.T) {
	t.Parallel()
	var src *bus.Source
	sink, s, front := seqRig(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, strconv.FormatUint(src.Sequence(), 10))
	}), nil)
	src = s
	cl := client(t)
	for i := range 20 {
		resp, err := cl.Get(front + "/orders/1")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		seen, _ := strconv.ParseUint(string(b), 10, 64)
		// The event is built after the response went out: wait for it.
		var got uint64
		for deadline := time.Now().Add(5 * time.Second); got == 0 && time.Now().Before(deadline); {
			if evs := sink.events(); len(evs) == i+1 {
				got = evs[i].GetEnvelope().GetSequence()
			} else {
				time.Sleep(time.Millisecond)
			}
		}
		if got != seen || seen != uint64(i+1) {
			t.Fatalf("request %d: the upstream saw sequence %d already taken; the event carries %d", i+1, seen, got)
		}
	}
}

// TestAbortedResponseStillEmits: when the upstream dies part way through
// the body, the proxy aborts the client connection (http.ErrAbortHandler)
// and still emits the exchange's event with its reserved number, marked
// response_aborted, so the sequence has no hole.
func TestAbortedResponseStillEmits(t *testing.T) {
	t.Parallel()
	sink, _, front := seqRig(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/cut" {
			conn, bw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = bw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial")
			_ = bw.Flush()
			time.Sleep(20 * time.Millisecond)
			conn.Close()
			return
		}
		_, _ = io.WriteString(w, "ok")
	}), nil)
	cl := client(t)
	for i := range 6 {
		path := "/ok"
		if i%2 == 1 {
			path = "/cut"
		}
		resp, err := cl.Get(front + path)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if (path == "/cut") != (err != nil) {
			t.Fatalf("%s: error %v", path, err)
		}
	}
	// The client may retry a GET whose reused connection closed before any
	// response byte arrived, so each cut request is one or more exchanges.
	deadline := time.Now().Add(5 * time.Second)
	for len(sink.events()) < 6 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	evs := sink.events()
	var seqs []uint64
	aborted := 0
	for _, ev := range evs {
		seqs = append(seqs, ev.GetEnvelope().GetSequence())
		if ev.GetRequestContext().GetPath() == "/cut" {
			if ev.GetPerformanceMetrics().GetProxyError() != "response_aborted" || ev.GetPerformanceMetrics().GetSuccess() {
				t.Errorf("aborted exchange: proxy_error %q success %v", ev.GetPerformanceMetrics().GetProxyError(), ev.GetPerformanceMetrics().GetSuccess())
			}
			aborted++
		}
	}
	slices.Sort(seqs)
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("sequences %v have a hole at %d", seqs, i+1)
		}
	}
	if aborted < 3 || len(seqs)-aborted != 3 {
		t.Fatalf("%d events, %d aborted; want 3 complete and at least 3 aborted", len(seqs), aborted)
	}
}

// TestSamplingLeavesNoHoles: under a sampling directive the numbers are
// reserved only for events the draw keeps, and failures kept although
// drawn out take theirs at the end, so the emitted sequence is contiguous:
// sampling never looks like loss.
func TestSamplingLeavesNoHoles(t *testing.T) {
	t.Parallel()
	pol, err := policy.New(policy.Config{Service: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	err = pol.Apply(&bridgev1.DirectiveSnapshot{Service: "orders", Version: 1, IssuedAt: timestamppb.Now(),
		Directives: []*bridgev1.Directive{{
			Id: bus.NewEventID(), Scope: &bridgev1.Scope{Service: "orders"},
			Mode:      bridgev1.DirectiveMode_DIRECTIVE_MODE_ENFORCE,
			ExpiresAt: timestamppb.New(time.Now().Add(time.Hour)),
			Spec: &bridgev1.Directive_EventSampling{EventSampling: &bridgev1.EventSamplingPolicy{
				SampleRate: 0.25, AlwaysKeepErrors: true}},
		}}})
	if err != nil {
		t.Fatal(err)
	}
	sink, src, front := seqRig(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "7") {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}), pol)
	const n = 400
	cl := client(t)
	for i := range n {
		resp, err := cl.Get(front + "/orders/" + strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, bufio.NewReader(resp.Body))
		resp.Body.Close()
	}
	evs := sink.events()
	var seqs []uint64
	failures := 0
	for _, ev := range evs {
		seqs = append(seqs, ev.GetEnvelope().GetSequence())
		if !ev.GetPerformanceMetrics().GetSuccess() {
			failures++
		}
	}
	slices.Sort(seqs)
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("emitted sequences have a hole at %d: %v", i+1, seqs)
		}
	}
	if src.Sequence() != uint64(len(seqs)) {
		t.Errorf("source handed out %d numbers for %d events", src.Sequence(), len(seqs))
	}
	if failures != n/10 {
		t.Errorf("%d failures emitted, want all %d", failures, n/10)
	}
	if len(evs) < n/10+40 || len(evs) > n/10+150 {
		t.Errorf("%d events of %d requests at 25%% plus failures", len(evs), n)
	}
}

// TestSignalNamesItsEvent: a critical signal the request path raises (an
// error burst) carries the id of the event of the request that raised it,
// so the control plane can count the stream's copy and the bus's copy once.
func TestSignalNamesItsEvent(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var sigs []*bridgev1.CriticalSignal
	pol, err := policy.New(policy.Config{Service: "orders",
		ErrorBurst: policy.ErrorBurstConfig{MinRequests: 5},
		OnSignal: func(s *bridgev1.CriticalSignal) {
			mu.Lock()
			defer mu.Unlock()
			sigs = append(sigs, s)
		}})
	if err != nil {
		t.Fatal(err)
	}
	sink, _, front := seqRig(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}), pol)
	cl := client(t)
	for range 10 {
		resp, err := cl.Get(front + "/orders/1")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(sink.events()) < 10 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sigs) != 1 || sigs[0].GetKind() != bridgev1.SignalKind_SIGNAL_KIND_ERROR_BURST {
		t.Fatalf("signals %v, want one error burst (at most one per second)", sigs)
	}
	var named []*bridgev1.CommunicationIntelligenceEvent
	for _, ev := range sink.events() {
		if ev.GetEnvelope().GetEventId() == sigs[0].GetEventId() {
			named = append(named, ev)
		}
	}
	if len(named) != 1 || named[0].GetPerformanceMetrics().GetSuccess() {
		t.Fatalf("the signal names event %s; %d emitted events carry that id, want one failed exchange", sigs[0].GetEventId(), len(named))
	}
}

// TestHandlerPanicStillEmits: a panic in the handler chain (a bug) still
// yields the exchange's event, marked proxy_error=panic, with its reserved
// number; the panic then goes on to net/http, which closes the connection,
// and the proxy keeps serving.
func TestHandlerPanicStillEmits(t *testing.T) {
	t.Parallel()
	mw := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/boom" {
				panic("boom")
			}
			next.ServeHTTP(w, r)
		})
	}
	sink, src, front := seqRigWith(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), nil, mw)
	tr := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	if resp, err := cl.Post(front+"/boom", "text/plain", strings.NewReader("x")); err == nil {
		resp.Body.Close()
		t.Fatalf("a panicking handler answered %d", resp.StatusCode)
	}
	resp, err := cl.Get(front + "/ok")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for len(sink.events()) < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	evs := sink.events()
	if len(evs) != 2 || src.Sequence() != 2 {
		t.Fatalf("%d events, source at %d; want 2 and 2", len(evs), src.Sequence())
	}
	for _, ev := range evs {
		pm := ev.GetPerformanceMetrics()
		if boom := ev.GetRequestContext().GetPath() == "/boom"; boom != (pm.GetProxyError() == "panic") || boom == pm.GetSuccess() {
			t.Errorf("%s: proxy_error %q success %v", ev.GetRequestContext().GetPath(), pm.GetProxyError(), pm.GetSuccess())
		}
	}
}
