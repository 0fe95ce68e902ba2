package hooksig_test

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omninode/bridge/internal/hooksig"
)

func TestVerifier(t *testing.T) {
	t.Parallel()
	oldKey := []byte("old-secret-0123456789")
	newKey := []byte("new-secret-abcdefghij")
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	rejects := map[string]int{}
	v, err := hooksig.New(hooksig.Config{
		Secrets:  []string{"whsec_" + base64.StdEncoding.EncodeToString(newKey), string(oldKey)},
		Now:      func() time.Time { return now },
		OnReject: func(r string) { rejects[r]++ },
	})
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	srv := httptest.NewServer(v.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, strconv.FormatInt(n, 10)+":"+string(b))
	})))
	defer srv.Close()

	send := func(id string, ts time.Time, body, sig string) (int, string, http.Header) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
		req.Header.Set(hooksig.HeaderID, id)
		req.Header.Set(hooksig.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
		req.Header.Set(hooksig.HeaderSignature, sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	body := `{"correlation_id":"c1"}`
	st, got, _ := send("msg_1", now, body, hooksig.Sign(newKey, "msg_1", now, []byte(body)))
	if st != http.StatusAccepted || got != "1:"+body {
		t.Fatalf("valid hook: %d %q", st, got)
	}
	// Replay: same answer, handler not called again.
	st, got, h := send("msg_1", now, body, hooksig.Sign(newKey, "msg_1", now, []byte(body)))
	if st != http.StatusAccepted || got != "1:"+body || h.Get("Webhook-Replayed") != "true" || calls.Load() != 1 {
		t.Fatalf("replay: %d %q replayed=%q calls=%d", st, got, h.Get("Webhook-Replayed"), calls.Load())
	}
	// Rotation: the old secret is still accepted; several signatures allowed.
	st, _, _ = send("msg_2", now, body, "v1,bogus "+hooksig.Sign(oldKey, "msg_2", now, []byte(body)))
	if st != http.StatusAccepted {
		t.Fatalf("old secret during rotation: %d", st)
	}
	cases := []struct {
		name, id   string
		ts         time.Time
		body, sig  string
		wantReason string
	}{
		{"bad signature", "msg_3", now, body, hooksig.Sign([]byte("attacker-secret-123456"), "msg_3", now, []byte(body)), "bad_signature"},
		{"body changed", "msg_4", now, body + " ", hooksig.Sign(newKey, "msg_4", now, []byte(body)), "bad_signature"},
		{"old timestamp", "msg_5", now.Add(-6 * time.Minute), body, hooksig.Sign(newKey, "msg_5", now.Add(-6*time.Minute), []byte(body)), "timestamp_skew"},
		{"future timestamp", "msg_6", now.Add(6 * time.Minute), body, hooksig.Sign(newKey, "msg_6", now.Add(6*time.Minute), []byte(body)), "timestamp_skew"},
		{"no signature", "msg_7", now, body, "", "missing_headers"},
	}
	for _, tc := range cases {
		before := calls.Load()
		if st, _, _ := send(tc.id, tc.ts, tc.body, tc.sig); st != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", tc.name, st)
		}
		if calls.Load() != before {
			t.Errorf("%s: handler called", tc.name)
		}
		if rejects[tc.wantReason] == 0 {
			t.Errorf("%s: no %s rejection counted (%v)", tc.name, tc.wantReason, rejects)
		}
	}
}
