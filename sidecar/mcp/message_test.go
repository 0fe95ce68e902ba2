package mcp

import (
	"errors"
	"strings"
	"testing"
)

func TestParseMessages(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, ctype, body string
		kinds             []Kind
		wantErr           bool
	}{
		{"request", "application/json", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, []Kind{KindRequest}, false},
		{"notification", "application/json; charset=utf-8", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, []Kind{KindNotification}, false},
		{"response", "application/json", `{"jsonrpc":"2.0","id":"a","result":{}}`, []Kind{KindResponse}, false},
		{"null result", "application/json", `{"jsonrpc":"2.0","id":"a","result":null}`, []Kind{KindResponse}, false},
		{"error response", "application/json", `{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"nope"}}`, []Kind{KindResponse}, false},
		{"batch", "application/json", `[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","method":"b"},{"jsonrpc":"1.0","id":2}]`, []Kind{KindRequest, KindNotification}, true},
		{"not jsonrpc", "application/json", `{"hello":"world"}`, nil, true},
		{"object id", "application/json", `{"jsonrpc":"2.0","id":{},"method":"x"}`, nil, true},
		{"bad json", "application/json", `{"jsonrpc":`, nil, true},
		{"sse", "text/event-stream", "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n" +
			": comment\n\nid: 5\ndata: {\"jsonrpc\":\"2.0\",\ndata: \"method\":\"notifications/tools/list_changed\"}\n\n" +
			"event: ping\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"ignored\"}\n\n", []Kind{KindResponse, KindNotification}, false},
		{"sse crlf", "text/event-stream", "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\r\n\r\n", []Kind{KindResponse}, false},
		{"sse unterminated", "text/event-stream", "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n", nil, false},
		{"content type", "text/html", `<p>`, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs, err := ParseMessages(tc.ctype, []byte(tc.body))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if len(msgs) != len(tc.kinds) {
				t.Fatalf("%d messages, want %d", len(msgs), len(tc.kinds))
			}
			for i, m := range msgs {
				if m.Kind() != tc.kinds[i] {
					t.Errorf("message %d kind %v, want %v", i, m.Kind(), tc.kinds[i])
				}
			}
		})
	}
	if _, err := ParseMessages("text/plain", nil); !errors.Is(err, ErrContentType) {
		t.Errorf("content type error %v", err)
	}
	msgs, _ := ParseMessages("application/json", []byte(`{"jsonrpc":"2.0","id": "x-1" ,"method":"m"}`))
	if msgs[0].IDText() != "x-1" || msgs[0].IDKey() != `"x-1"` {
		t.Errorf("id %q %q", msgs[0].IDText(), msgs[0].IDKey())
	}
}

// TestSSESplitterChunks feeds an event stream one byte at a time and in
// odd chunks, including a "\r\n" split across chunks, and an event over the
// cap that must be skipped without disturbing the next one.
func TestSSESplitterChunks(t *testing.T) {
	t.Parallel()
	stream := "data: one\r\n\r\nevent: message\ndata: two\ndata: lines\n\ndata: " + strings.Repeat("x", 100) + "\n\ndata: three\r\r"
	for _, chunk := range []int{1, 2, 3, 7, len(stream)} {
		var got []string
		drops := 0
		sp := newSSESplitter(64, func(b []byte) { got = append(got, string(b)) })
		sp.dropped = func() { drops++ }
		for i := 0; i < len(stream); i += chunk {
			sp.write([]byte(stream[i:min(i+chunk, len(stream))]))
		}
		if strings.Join(got, "|") != "one|two\nlines|three" || drops != 1 {
			t.Errorf("chunk %d: got %q, %d drops", chunk, got, drops)
		}
	}
}
