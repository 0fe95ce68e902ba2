package kv_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/omninode/bridge/controlplane/kv"
	"github.com/omninode/bridge/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func testKV(t *testing.T, s kv.KV) {
	ctx := t.Context()
	if _, ok, err := s.Get(ctx, kv.DesiredKey("pay")); err != nil || ok {
		t.Fatalf("empty get: ok=%v err=%v", ok, err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Put(ctx, kv.DesiredKey("pay"), []byte(`{"timeout":"2s"}`)))
	must(s.Put(ctx, kv.OverrideKey("pay", "timeout"), []byte(`{"timeout":"5s"}`)))
	must(s.Put(ctx, kv.OverrideKey("payments", "retry"), []byte(`x`))) // another service with a shared name prefix
	v, ok, err := s.Get(ctx, kv.DesiredKey("pay"))
	if err != nil || !ok || string(v) != `{"timeout":"2s"}` {
		t.Fatalf("get = %q %v %v", v, ok, err)
	}
	desired, overrides, err := kv.Effective(ctx, s, "pay")
	if err != nil {
		t.Fatal(err)
	}
	if string(desired) != `{"timeout":"2s"}` || len(overrides) != 1 || string(overrides["timeout"]) != `{"timeout":"5s"}` {
		t.Fatalf("effective = %q %q", desired, overrides)
	}
	all, err := s.List(ctx, kv.PrefixOverrides)
	if err != nil || len(all) != 2 {
		t.Fatalf("list = %v %v", all, err)
	}
	must(s.Delete(ctx, kv.OverrideKey("pay", "timeout")))
	must(s.Delete(ctx, kv.OverrideKey("pay", "nothing")))
	if _, overrides, _ = kv.Effective(ctx, s, "pay"); len(overrides) != 0 {
		t.Fatalf("override not deleted: %v", overrides)
	}
	if err := s.Put(ctx, "", nil); err == nil {
		t.Fatal("empty key accepted")
	}
}

func TestMemKV(t *testing.T) {
	t.Parallel()
	testKV(t, kv.NewMem())
}

// Consul: KV, registration with a health check, the catalog picture, and the
// last picture kept while Consul is down. Not parallel: it stops the shared agent.
func TestConsul(t *testing.T) {
	agent := testenv.Consul(t)
	client, err := kv.NewClient(agent.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Run("kv", func(t *testing.T) { testKV(t, kv.NewConsul(client)) })

	healthy := true
	var hmu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hmu.Lock()
		defer hmu.Unlock()
		if !healthy {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	host, portStr, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(portStr)

	var mu sync.Mutex
	var pictures [][]kv.CatalogService
	w, err := kv.NewCatalogWatcher(kv.WatcherConfig{Client: client, WaitTime: time.Second,
		RetryMax: 500 * time.Millisecond, OnChange: func(s []kv.CatalogService) {
			mu.Lock()
			pictures = append(pictures, s)
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	latest := func() []kv.CatalogService {
		mu.Lock()
		defer mu.Unlock()
		if len(pictures) == 0 {
			return nil
		}
		return pictures[len(pictures)-1]
	}
	waitFor := func(what string, cond func([]kv.CatalogService) bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond(latest()) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; picture %+v", what, latest())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	reg := kv.ServiceRegistration{ID: "pay-1", Name: "pay", Version: "1.4.2", Address: host, Port: port,
		HealthURL: srv.URL + "/readyz", CheckInterval: 200 * time.Millisecond}
	if err := kv.Register(ctx, client, reg); err != nil {
		t.Fatal(err)
	}
	waitFor("pay-1 healthy", func(s []kv.CatalogService) bool {
		return len(s) == 1 && s[0] == kv.CatalogService{Name: "pay", ID: "pay-1", Version: "1.4.2", Address: host, Port: port, Healthy: true}
	})
	hmu.Lock()
	healthy = false
	hmu.Unlock()
	waitFor("pay-1 unhealthy", func(s []kv.CatalogService) bool { return len(s) == 1 && !s[0].Healthy })
	if err := kv.Deregister(ctx, client, "pay-1"); err != nil {
		t.Fatal(err)
	}
	waitFor("pay-1 gone", func(s []kv.CatalogService) bool { return s != nil && len(s) == 0 })
	hmu.Lock()
	healthy = true
	hmu.Unlock()
	if err := kv.Register(ctx, client, reg); err != nil {
		t.Fatal(err)
	}
	waitFor("pay-1 back", func(s []kv.CatalogService) bool { return len(s) == 1 && s[0].Healthy })

	mu.Lock()
	n := len(pictures)
	mu.Unlock()
	agent.Stop(t)
	time.Sleep(2 * time.Second) // several failed queries
	got, ok := w.Services()
	mu.Lock()
	changed := len(pictures) != n
	mu.Unlock()
	agent.Start(t)
	if !ok || len(got) != 1 || got[0].ID != "pay-1" || changed {
		t.Fatalf("with Consul down the picture became %+v (changed=%v); want the last one kept", got, changed)
	}
}
