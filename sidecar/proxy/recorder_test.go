package proxy

import (
	"net/http/httptest"
	"testing"
	"time"
)

func TestRecorderConnectEndStream(t *testing.T) {
	var rec recorder
	rec.reset(httptest.NewRecorder(), time.Now(), sniffConnectStream)
	msg := []byte{0, 0, 0, 0, 2, 1, 2}
	end := append([]byte{2, 0, 0, 0, 0}, []byte(`{"error":{"code":"unavailable","message":"x"}}`)...)
	end[4] = byte(len(end) - 5)
	rec.Write(msg)
	rec.Write(end[:3])
	rec.Write(end[3:])
	if got := rec.connectCode(); got != "unavailable" {
		t.Fatalf("code %q", got)
	}
}
