package hooks

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/omninode/bridge/internal/bus"
)

// FuzzHookDecode sends arbitrary bodies to both JSON endpoints. Every answer
// must be 200 or a 4xx with a JSON reason; a 200 emits at most one event that
// the bus encodes and decodes back; a rejection emits nothing.
func FuzzHookDecode(f *testing.F) {
	f.Add(false, []byte(`{"event_type":"LIFECYCLE_EVENT_TYPE_SERVICE_STARTED"}`))
	f.Add(true, []byte(`{"correlation_id":"c","pre_context":{"operation":"x"},"results":{"execution_time":"1s"}}`))
	e := newEnv(f, func(c *Config) { c.MaxBodyBytes = 8 << 10; c.MaxPending = 100 })
	h := e.srv.Handler()
	f.Fuzz(func(t *testing.T, execution bool, body []byte) {
		path := PathLifecycle
		if execution {
			path = PathExecution
		}
		before := len(e.sink.all())
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		evs := e.sink.all()[before:]
		switch rec.Code {
		case http.StatusOK:
			if len(evs) > 1 {
				t.Fatalf("%d events for one hook", len(evs))
			}
			for _, ev := range evs {
				rec, err := bus.Encode(ev)
				if err != nil {
					t.Fatalf("emitted event does not encode: %v", err)
				}
				if _, err := bus.Decode(rec); err != nil {
					t.Fatalf("emitted event does not decode: %v", err)
				}
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
			if len(evs) != 0 {
				t.Fatalf("rejected hook emitted %d events", len(evs))
			}
			var out struct{ Error, Reason string }
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Reason == "" {
				t.Fatalf("rejection without a reason: %q", rec.Body.String())
			}
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
		}
	})
}
