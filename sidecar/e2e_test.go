package sidecar

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/coder/websocket"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/gen/omninode/bridge/v1/bridgev1connect"
	"github.com/omninode/bridge/internal/testenv"
)

type intelSvc struct {
	bridgev1connect.UnimplementedIntelligenceServiceHandler
}

func (intelSvc) GetStatus(_ context.Context, req *connect.Request[bridgev1.GetStatusRequest]) (*connect.Response[bridgev1.GetStatusResponse], error) {
	if req.Msg.GetService() == "missing" {
		return nil, connect.NewError(connect.CodeNotFound, errors.New("no such service"))
	}
	return connect.NewResponse(&bridgev1.GetStatusResponse{Versions: map[string]uint64{req.Msg.GetService(): 7}}), nil
}

func (intelSvc) Tap(_ context.Context, req *connect.Request[bridgev1.TapRequest], st *connect.ServerStream[bridgev1.TapResponse]) error {
	for range 3 {
		if err := st.Send(&bridgev1.TapResponse{}); err != nil {
			return err
		}
	}
	if req.Msg.GetErrorsOnly() {
		return connect.NewError(connect.CodeUnavailable, errors.New("tap closed"))
	}
	return nil
}

type directiveSvc struct {
	bridgev1connect.UnimplementedDirectiveServiceHandler
}

func (directiveSvc) Sync(_ context.Context, st *connect.BidiStream[bridgev1.SyncRequest, bridgev1.SyncResponse]) error {
	for {
		if _, err := st.Receive(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := st.Send(&bridgev1.SyncResponse{}); err != nil {
			return err
		}
	}
}

// upstreamMux is the service behind the sidecar in the protocol tests.
func upstreamMux(sseGate chan struct{}) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(bridgev1connect.NewIntelligenceServiceHandler(intelSvc{}))
	mux.Handle(bridgev1connect.NewDirectiveServiceHandler(directiveSvc{}))
	mux.HandleFunc("/orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Seen-Traceparent", r.Header.Get("Traceparent"))
		w.Header().Set("X-Seen-Forwarded-For", r.Header.Get("X-Forwarded-For"))
		w.Header().Set("X-Seen-Omninode", r.Header.Get("X-Omninode-Source-Service")+"|"+r.Header.Get("X-Omninode-Service"))
		w.Header().Set("X-Seen-Proto", r.Proto)
		if r.PathValue("id") == "404" {
			w.WriteHeader(http.StatusNotFound)
		}
		_, _ = w.Write([]byte(`{"id":"` + r.PathValue("id") + `","got":` + itoa(len(body)) + `}`))
	})
	mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			_, _ = w.Write([]byte("data: event " + itoa(i) + "\n\n"))
			w.(http.Flusher).Flush()
		}
		<-sseGate // the stream stays open until the client saw the events
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, msg); err != nil {
				return
			}
		}
	})
	return mux
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestProtocolsThroughSidecar(t *testing.T) {
	t.Parallel()
	kafka := testenv.Kafka(t)
	events := collect(t, kafka.Brokers())
	sseGate := make(chan struct{})
	up := startUpstream(t, upstreamMux(sseGate))
	sc := startSidecar(t, up, kafka.Brokers(), nil)
	base := "http://" + sc.ProxyAddr()
	h1 := &http.Client{Transport: &http.Transport{}}
	h2cTr := &http.Transport{Protocols: new(http.Protocols)}
	h2cTr.Protocols.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Transport: h2cTr}
	t.Cleanup(h1.CloseIdleConnections)
	t.Cleanup(h2cTr.CloseIdleConnections)

	started := events.lifecycle(t, bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_STARTED)
	if started.GetServiceInfo().GetName() != "orders" || started.GetHealth() != bridgev1.HealthStatus_HEALTH_STATUS_HEALTHY ||
		started.GetEnvelope().GetSource().GetVersion() != "1.2.3" {
		t.Errorf("service_started = %v", started)
	}

	t.Run("http1", func(t *testing.T) {
		corr := newCorr("h1")
		req, _ := http.NewRequest(http.MethodPost, base+"/orders/12345?token=s3cret&page=2", strings.NewReader("hello"))
		req.Header.Set("X-Correlation-Id", corr)
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("Authorization", "Bearer s3cret")
		req.Header.Set("X-Forwarded-For", "203.0.113.7")
		req.Header.Set("X-Omninode-Source-Service", "checkout")
		req.Header.Set("X-Omninode-Service", "spoofed")
		req.Header.Set("X-User-Id", "alice")
		req.Header.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
		resp, err := h1.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != `{"id":"12345","got":5}` {
			t.Fatalf("response %d %s", resp.StatusCode, body)
		}
		tp := resp.Header.Get("X-Seen-Traceparent")
		if !strings.HasPrefix(tp, "00-0af7651916cd43dd8448eb211c80319c-") || strings.Contains(tp, "b7ad6b7169203331") {
			t.Errorf("upstream traceparent %q: want the same trace, a new parent span", tp)
		}
		if got := resp.Header.Get("X-Seen-Forwarded-For"); got != "203.0.113.7, 127.0.0.1" {
			t.Errorf("X-Forwarded-For = %q", got)
		}
		if got := resp.Header.Get("X-Seen-Omninode"); got != "|orders" {
			t.Errorf("internal headers at upstream = %q, want spoofed ones replaced", got)
		}
		ev := events.comm(t, corr)
		rc, pm := ev.GetRequestContext(), ev.GetPerformanceMetrics()
		check(t, "method", rc.GetMethod(), "POST")
		check(t, "route", rc.GetRoute(), "/orders/{id}")
		if !strings.HasPrefix(rc.GetPath(), "/orders/12345?") || strings.Contains(rc.GetPath(), "s3cret") || !strings.Contains(rc.GetPath(), "page=2") {
			t.Errorf("path = %q", rc.GetPath())
		}
		check(t, "payload_size", rc.GetPayloadSize(), int64(5))
		check(t, "protocol", rc.GetProtocol(), bridgev1.Protocol_PROTOCOL_HTTP1)
		check(t, "source_service", rc.GetSourceService(), "checkout")
		check(t, "user_context", rc.GetUserContext(), "alice")
		check(t, "content-type header", rc.GetHeaders()["content-type"], "text/plain")
		if _, ok := rc.GetHeaders()["authorization"]; ok {
			t.Errorf("authorization header in event (not allow-listed)")
		}
		check(t, "status", pm.GetStatusCode(), int32(200))
		check(t, "response_size", pm.GetResponseSize(), int64(len(body)))
		check(t, "target_service", pm.GetTargetService(), "orders")
		check(t, "success", pm.GetSuccess(), true)
		check(t, "rpc_code", pm.GetRpcCode(), "")
		check(t, "trace id", ev.GetEnvelope().GetTrace().GetTraceId(), "0af7651916cd43dd8448eb211c80319c")
		check(t, "parent span", ev.GetEnvelope().GetTrace().GetParentSpanId(), "b7ad6b7169203331")
		check(t, "sample_weight", ev.GetSampleWeight(), 1.0)
		check(t, "event type", ev.GetEventType(), bridgev1.CommunicationEventType_COMMUNICATION_EVENT_TYPE_RESPONSE_ANALYSIS)
		if d := pm.GetResponseTime().AsDuration(); d <= 0 || d > 5*time.Second {
			t.Errorf("response_time = %v", d)
		}
		if d := pm.GetTimeToFirstByte().AsDuration(); d <= 0 || d > pm.GetResponseTime().AsDuration() {
			t.Errorf("ttfb = %v", d)
		}
	})

	t.Run("h2c", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, base+"/orders/404", nil)
		resp, err := h2c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.StatusCode != 404 || resp.Header.Get("X-Seen-Proto") != "HTTP/2.0" {
			t.Fatalf("proto %s status %d upstream %s", resp.Proto, resp.StatusCode, resp.Header.Get("X-Seen-Proto"))
		}
		// No correlation id: the trace id stands in.
		tid := strings.Split(resp.Header.Get("X-Seen-Traceparent"), "-")[1]
		ev := events.comm(t, tid)
		check(t, "protocol", ev.GetRequestContext().GetProtocol(), bridgev1.Protocol_PROTOCOL_HTTP2)
		check(t, "status", ev.GetPerformanceMetrics().GetStatusCode(), int32(404))
		check(t, "success (404 is not a server failure)", ev.GetPerformanceMetrics().GetSuccess(), true)
		check(t, "trace id", ev.GetEnvelope().GetTrace().GetTraceId(), tid)
	})

	rpc := func(t *testing.T, opts ...connect.ClientOption) (bridgev1connect.IntelligenceServiceClient, bridgev1connect.DirectiveServiceClient) {
		return bridgev1connect.NewIntelligenceServiceClient(h2c, base, opts...), bridgev1connect.NewDirectiveServiceClient(h2c, base, opts...)
	}
	t.Run("grpc unary", func(t *testing.T) {
		ic, _ := rpc(t, connect.WithGRPC())
		for _, c := range []struct {
			svc, code string
			success   bool
		}{{"orders", "ok", true}, {"missing", "not_found", false}} {
			corr := newCorr("grpc")
			req := connect.NewRequest(&bridgev1.GetStatusRequest{Service: c.svc})
			req.Header().Set("X-Correlation-Id", corr)
			resp, err := ic.GetStatus(t.Context(), req)
			if c.success && (err != nil || resp.Msg.GetVersions()["orders"] != 7) {
				t.Fatalf("GetStatus: %v", err)
			}
			if !c.success && connect.CodeOf(err) != connect.CodeNotFound {
				t.Fatalf("GetStatus(missing) = %v, want not_found through the proxy", err)
			}
			ev := events.comm(t, corr)
			check(t, "protocol", ev.GetRequestContext().GetProtocol(), bridgev1.Protocol_PROTOCOL_GRPC)
			check(t, "route", ev.GetRequestContext().GetRoute(), "/omninode.bridge.v1.IntelligenceService/GetStatus")
			check(t, "status", ev.GetPerformanceMetrics().GetStatusCode(), int32(200))
			check(t, "rpc_code", ev.GetPerformanceMetrics().GetRpcCode(), c.code)
			check(t, "success", ev.GetPerformanceMetrics().GetSuccess(), c.success)
		}
	})

	t.Run("grpc bidi", func(t *testing.T) {
		_, dc := rpc(t, connect.WithGRPC())
		corr := newCorr("bidi")
		st := dc.Sync(t.Context())
		st.RequestHeader().Set("X-Correlation-Id", corr)
		for i := range 3 {
			if err := st.Send(&bridgev1.SyncRequest{}); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Receive(); err != nil {
				t.Fatalf("receive %d: %v", i, err)
			}
		}
		st.CloseRequest()
		if _, err := st.Receive(); !errors.Is(err, io.EOF) {
			t.Fatalf("end of stream: %v", err)
		}
		st.CloseResponse()
		ev := events.comm(t, corr)
		check(t, "protocol", ev.GetRequestContext().GetProtocol(), bridgev1.Protocol_PROTOCOL_GRPC)
		check(t, "rpc_code", ev.GetPerformanceMetrics().GetRpcCode(), "ok")
		if ev.GetRequestContext().GetPayloadSize() < 15 || ev.GetPerformanceMetrics().GetResponseSize() < 15 {
			t.Errorf("sizes %d/%d, want 3 framed messages each way", ev.GetRequestContext().GetPayloadSize(), ev.GetPerformanceMetrics().GetResponseSize())
		}
	})

	t.Run("connect unary", func(t *testing.T) {
		ic, _ := rpc(t)
		for _, c := range []struct {
			svc, code string
			status    int32
		}{{"orders", "ok", 200}, {"missing", "not_found", 404}} {
			corr := newCorr("connect")
			req := connect.NewRequest(&bridgev1.GetStatusRequest{Service: c.svc})
			req.Header().Set("X-Correlation-Id", corr)
			_, err := ic.GetStatus(t.Context(), req)
			if got := connect.CodeOf(err); (c.code == "ok") != (err == nil) || (err != nil && got != connect.CodeNotFound) {
				t.Fatalf("GetStatus(%s): %v", c.svc, err)
			}
			ev := events.comm(t, corr)
			check(t, "protocol", ev.GetRequestContext().GetProtocol(), bridgev1.Protocol_PROTOCOL_CONNECT)
			check(t, "status", ev.GetPerformanceMetrics().GetStatusCode(), c.status)
			check(t, "rpc_code", ev.GetPerformanceMetrics().GetRpcCode(), c.code)
		}
	})

	t.Run("connect server stream", func(t *testing.T) {
		ic, _ := rpc(t)
		for _, c := range []struct {
			errorsOnly bool
			code       string
		}{{false, "ok"}, {true, "unavailable"}} {
			corr := newCorr("stream")
			req := connect.NewRequest(&bridgev1.TapRequest{ErrorsOnly: c.errorsOnly})
			req.Header().Set("X-Correlation-Id", corr)
			st, err := ic.Tap(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for st.Receive() {
				n++
			}
			if n != 3 || (st.Err() == nil) != (c.code == "ok") {
				t.Fatalf("got %d messages, err %v", n, st.Err())
			}
			st.Close()
			ev := events.comm(t, corr)
			check(t, "protocol", ev.GetRequestContext().GetProtocol(), bridgev1.Protocol_PROTOCOL_CONNECT)
			check(t, "rpc_code", ev.GetPerformanceMetrics().GetRpcCode(), c.code)
			check(t, "success", ev.GetPerformanceMetrics().GetSuccess(), c.code == "ok")
		}
	})

	t.Run("sse", func(t *testing.T) {
		corr := newCorr("sse")
		req, _ := http.NewRequest(http.MethodGet, base+"/events", nil)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("X-Correlation-Id", corr)
		resp, err := h1.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(resp.Body)
		got := 0
		for got < 3 {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("read event %d before the stream ended: %v", got, err)
			}
			if strings.HasPrefix(line, "data: ") {
				got++
			}
		}
		close(sseGate) // only now may the upstream end the stream
		io.Copy(io.Discard, br)
		resp.Body.Close()
		ev := events.comm(t, corr)
		check(t, "protocol", ev.GetRequestContext().GetProtocol(), bridgev1.Protocol_PROTOCOL_SSE)
		check(t, "response_size", ev.GetPerformanceMetrics().GetResponseSize(), int64(3*len("data: event 0\n\n")))
	})

	t.Run("websocket", func(t *testing.T) {
		corr := newCorr("ws")
		c, _, err := websocket.Dial(t.Context(), "ws://"+sc.ProxyAddr()+"/ws", &websocket.DialOptions{
			HTTPHeader: http.Header{"X-Correlation-Id": {corr}},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []string{"ping", "pong-pong"} {
			if err := c.Write(t.Context(), websocket.MessageText, []byte(m)); err != nil {
				t.Fatal(err)
			}
			_, got, err := c.Read(t.Context())
			if err != nil || string(got) != m {
				t.Fatalf("echo %q: %q %v", m, got, err)
			}
		}
		c.Close(websocket.StatusNormalClosure, "")
		ev := events.comm(t, corr)
		check(t, "protocol", ev.GetRequestContext().GetProtocol(), bridgev1.Protocol_PROTOCOL_WEBSOCKET)
		check(t, "status", ev.GetPerformanceMetrics().GetStatusCode(), int32(101))
		if ev.GetPerformanceMetrics().GetResponseSize() < int64(len("ping")+len("pong-pong")) {
			t.Errorf("response_size %d too small", ev.GetPerformanceMetrics().GetResponseSize())
		}
	})

	t.Run("admin", func(t *testing.T) {
		for path, want := range map[string]string{
			"/livez": "ok", "/readyz": "ok", "/debug/state": `"service": "orders"`,
			"/metrics": `omnibridge_sidecar_requests_total{method="POST",route="/orders/{id}",status="200"}`,
		} {
			resp, err := http.Get("http://" + sc.AdminAddr() + path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
				t.Errorf("%s: %d, want %q in\n%s", path, resp.StatusCode, want, b)
			}
			if strings.Contains(string(b), "s3cret") {
				t.Errorf("%s leaks the secret", path)
			}
		}
	})
}

func check[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}
