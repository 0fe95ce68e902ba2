package sidecar

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/testenv"
)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestCanarySecretLeavesNoTrace(t *testing.T) {
	t.Parallel()
	const canary = "CANARY-7f3a9c2e1b"
	kafka := testenv.Kafka(t)
	events := collect(t, kafka.Brokers())
	up := startUpstream(t, upstreamMux(make(chan struct{})))
	logs := &syncBuffer{}
	sc := startSidecar(t, up, kafka.Brokers(), func(c *Config) {
		c.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	corr := newCorr("canary")
	req, _ := http.NewRequest(http.MethodPost,
		"http://"+sc.ProxyAddr()+"/orders/77?api_key="+canary+"&sig="+canary+"&X-Amz-Signature="+canary+"&access_token="+canary,
		strings.NewReader(`{"password":"`+canary+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Correlation-Id", corr)
	req.Header.Set("Authorization", "Bearer "+canary)
	req.Header.Set("Proxy-Authorization", "Basic "+canary)
	req.Header.Set("Cookie", "session="+canary)
	req.Header.Set("X-Api-Key", canary)
	req.Header.Set("User-Agent", "test "+canary[:3]) // allow-listed, harmless
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	for _, hook := range []string{
		`{"correlation_id": "` + corr + `", "pre_context": {"operation": "login", "parameters": {"user": "bob", "password": "` + canary + `", "apiKey": "` + canary + `"}}}`,
		`{"correlation_id": "` + corr + `", "results": {"success": true, "execution_time": "0.012s", "output": {"session_token": "` + canary + `"}}}`,
	} {
		resp, err = http.Post("http://"+sc.HooksAddr()+"/v1/hooks/execution", "application/json", strings.NewReader(hook))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("hook status %d: %s", resp.StatusCode, b)
		}
	}

	ev := events.comm(t, corr)
	if !strings.Contains(ev.GetRequestContext().GetPath(), "api_key=") {
		t.Errorf("path %q lost its query names", ev.GetRequestContext().GetPath())
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		events.mu.Lock()
		var exec bool
		for _, e := range events.events {
			if x, ok := e.(*bridgev1.ExecutionIntelligenceEvent); ok && x.GetCorrelationId() == corr {
				exec = true
			}
		}
		events.mu.Unlock()
		if exec {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no execution event from the hook")
		}
		time.Sleep(20 * time.Millisecond)
	}

	events.mu.Lock()
	for i, r := range events.raw {
		if bytes.Contains(r, []byte(canary)) {
			t.Errorf("broker record part %d holds the canary", i)
		}
	}
	events.mu.Unlock()
	for _, path := range []string{"/metrics", "/debug/state"} {
		resp, err := http.Get("http://" + sc.AdminAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if bytes.Contains(b, []byte(canary)) {
			t.Errorf("%s holds the canary", path)
		}
	}
	sc.stop(t)
	if strings.Contains(logs.String(), canary) {
		t.Errorf("logs hold the canary")
	}
	if !strings.Contains(logs.String(), "sidecar stopped") {
		t.Errorf("logs were not captured: %q", logs.String())
	}
}
