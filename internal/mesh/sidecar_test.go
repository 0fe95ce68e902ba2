package mesh

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/omninode/bridge/internal/hooksig"
)

// TestSidecarSignedHooks: with a hooks secret the hook receiver only passes
// signed requests on; a replay is answered with the first answer; without a
// secret a non-loopback hooks address is refused.
func TestSidecarSignedHooks(t *testing.T) {
	t.Parallel()
	const secret = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"
	sc := DefaultSidecarConfig()
	sc.Base.Service, sc.Base.Upstream = "orders", upstream(t)
	sc.Base.Listen, sc.Base.Admin, sc.Base.Hooks = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	sc.Base.SpoolDir, sc.Base.Logger = t.TempDir(), quietLog()
	sc.HooksSecrets = []string{secret}
	s, err := NewSidecar(sc)
	if err != nil {
		t.Fatal(err)
	}
	run(t, "sidecar", s.Run)
	if s.HooksAddr() == s.SC.HooksAddr() {
		t.Fatal("the verified hook listener is the receiver's own")
	}
	body := []byte(`{"eventType":"LIFECYCLE_EVENT_TYPE_SERVICE_STARTED","serviceInfo":{"name":"orders","version":"v1"},"health":"HEALTH_STATUS_HEALTHY"}`)
	post := func(sign bool, id string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "http://"+s.HooksAddr()+"/v1/hooks/lifecycle", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if sign {
			key, _ := hooksig.DecodeSecret(secret)
			now := time.Now()
			req.Header.Set(hooksig.HeaderID, id)
			req.Header.Set(hooksig.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
			req.Header.Set(hooksig.HeaderSignature, hooksig.Sign(key, id, now, body))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(false, ""); code != http.StatusUnauthorized {
		t.Errorf("unsigned hook: %d, want 401", code)
	}
	first := post(true, "msg-1")
	if first/100 != 2 {
		t.Fatalf("signed hook: %d, want 2xx", first)
	}
	if code := post(true, "msg-1"); code != first {
		t.Errorf("replayed hook: %d, want the first answer %d", code, first)
	}

	bad := sc
	bad.HooksSecrets = nil
	bad.Base.Hooks = "0.0.0.0:0"
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "--hooks-secret") {
		t.Errorf("unsigned hooks on 0.0.0.0: %v, want a refusal naming --hooks-secret", err)
	}
	bad.HooksInsecure = true
	if err := bad.Validate(); err != nil {
		t.Errorf("--hooks-insecure: %v", err)
	}
}
