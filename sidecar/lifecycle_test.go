package sidecar

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/testenv"
)

func TestHealthProbeAndGracefulShutdown(t *testing.T) {
	t.Parallel()
	kafka := testenv.Kafka(t)
	events := collect(t, kafka.Brokers())
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(400 * time.Millisecond)
		_, _ = w.Write([]byte("done"))
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	upSrv := &http.Server{Handler: mux}
	go func() { _ = upSrv.Serve(l) }()
	sc := startSidecar(t, "http://"+l.Addr().String(), kafka.Brokers(), func(c *Config) { c.HealthPath = "/healthz" })

	st := events.lifecycle(t, bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_STARTED)
	if st.GetHealth() != bridgev1.HealthStatus_HEALTH_STATUS_HEALTHY || st.GetIntelligenceMetadata().GetDiscoveryMethod() != bridgev1.DiscoveryMethod_DISCOVERY_METHOD_PROXY {
		t.Errorf("started = %v", st)
	}

	// The upstream goes away: a health change, and not ready.
	_ = upSrv.Close()
	hc := events.lifecycle(t, bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_HEALTH_CHANGE)
	if hc.GetHealth() != bridgev1.HealthStatus_HEALTH_STATUS_UNHEALTHY || hc.GetPreviousHealth() != bridgev1.HealthStatus_HEALTH_STATUS_HEALTHY || hc.GetHealthReason() == "" {
		t.Errorf("health change = %v", hc)
	}
	if code := get(t, "http://"+sc.AdminAddr()+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("readyz with the upstream down = %d", code)
	}
	// A request now fails with 502 and its event says why.
	req, _ := http.NewRequest(http.MethodGet, "http://"+sc.ProxyAddr()+"/slow", nil)
	req.Header.Set("X-Correlation-Id", "down-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ev := events.comm(t, "down-1")
	check(t, "status", ev.GetPerformanceMetrics().GetStatusCode(), int32(502))
	check(t, "proxy_error", ev.GetPerformanceMetrics().GetProxyError(), "connection refused")
	check(t, "success", ev.GetPerformanceMetrics().GetSuccess(), false)

	// Back up on the same address; then a shutdown drains an in-flight request.
	l2, err := net.Listen("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	up2 := &http.Server{Handler: mux}
	go func() { _ = up2.Serve(l2) }()
	t.Cleanup(func() { _ = up2.Close() })
	deadline := time.Now().Add(5 * time.Second)
	for get(t, "http://"+sc.AdminAddr()+"/readyz") != 200 {
		if time.Now().After(deadline) {
			t.Fatal("not ready after the upstream came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	type result struct {
		code int
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, "http://"+sc.ProxyAddr()+"/slow", nil)
		req.Header.Set("X-Correlation-Id", "drain-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			res <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{code: resp.StatusCode, body: string(b)}
	}()
	time.Sleep(150 * time.Millisecond)
	sc.stop(t)
	r := <-res
	if r.err != nil || r.code != 200 || r.body != "done" {
		t.Fatalf("in-flight request across shutdown: %+v", r)
	}
	if _, err := net.DialTimeout("tcp", sc.ProxyAddr(), time.Second); err == nil {
		t.Errorf("proxy still accepting after shutdown")
	}
	events.comm(t, "drain-1") // flushed before exit
	stopped := events.lifecycle(t, bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_STOPPED)
	if stopped.GetServiceInfo().GetName() != "orders" {
		t.Errorf("stopped = %v", stopped)
	}
}

func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
