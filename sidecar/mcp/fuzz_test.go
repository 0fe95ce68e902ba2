package mcp

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzMCPParse checks the message parser on arbitrary bodies: no panic,
// every message returned is a well-formed request, notification or response
// with a string or number id, and an event stream parses the same whether
// it arrives whole or split in two at any point.
func FuzzMCPParse(f *testing.F) {
	f.Add(false, uint16(0), []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	f.Add(true, uint16(9), []byte("event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n"))
	f.Fuzz(func(t *testing.T, sse bool, split uint16, body []byte) {
		ct := "application/json"
		if sse {
			ct = "text/event-stream"
		}
		msgs, _ := ParseMessages(ct, body)
		for _, m := range msgs {
			if m.Kind() == KindInvalid {
				t.Fatalf("invalid message returned: %+v", m)
			}
			if m.ID != nil {
				var id any
				if err := json.Unmarshal(m.ID, &id); err != nil {
					t.Fatalf("id %q is not JSON: %v", m.ID, err)
				}
				switch id.(type) {
				case string, float64:
				default:
					t.Fatalf("id %q is not a string or number", m.ID)
				}
			}
		}
		if !sse {
			return
		}
		var whole, parts [][]byte
		collect := func(dst *[][]byte) func([]byte) { return func(b []byte) { *dst = append(*dst, b) } }
		newSSESplitter(1<<20, collect(&whole)).write(body)
		sp := newSSESplitter(1<<20, collect(&parts))
		i := int(split) % (len(body) + 1)
		sp.write(body[:i])
		sp.write(body[i:])
		if !reflect.DeepEqual(whole, parts) {
			t.Fatalf("split at %d changed the events: %q vs %q", i, whole, parts)
		}
		for _, d := range whole {
			if bytes.Contains(d, []byte("\r")) {
				t.Fatalf("event data kept a line break: %q", d)
			}
		}
	})
}
