package mcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"strconv"
)

// Kind is the kind of a JSON-RPC message.
type Kind int

// Message kinds.
const (
	KindInvalid      Kind = iota
	KindRequest           // method and id
	KindNotification      // method, no id
	KindResponse          // id and result or error
)

// Message is one JSON-RPC 2.0 message.
type Message struct {
	// ID is the raw JSON id (a string or a number); nil for notifications.
	ID json.RawMessage
	// Method of a request or notification.
	Method string
	// Params of a request or notification, raw.
	Params json.RawMessage
	// Result of a successful response, raw.
	Result json.RawMessage
	// Error of a failed response.
	Error *Error
}

// Error is a JSON-RPC error object.
type Error struct {
	Code    int64           `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// Kind classifies the message.
func (m *Message) Kind() Kind {
	switch {
	case m.Method != "" && m.ID != nil:
		return KindRequest
	case m.Method != "":
		return KindNotification
	case m.ID != nil && (m.Result != nil || m.Error != nil):
		return KindResponse
	}
	return KindInvalid
}

// IDKey is the id as a map key (its compact JSON text).
func (m *Message) IDKey() string { return string(m.ID) }

// IDText is the id as text: a string id without quotes, a number as written.
func (m *Message) IDText() string {
	var s string
	if err := json.Unmarshal(m.ID, &s); err == nil {
		return s
	}
	return string(m.ID)
}

// wire is the JSON form of a message.
type wire struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
	Result  json.RawMessage `json:"result"`
	Error   *Error          `json:"error"`
}

// Errors of ParseMessages.
var (
	// ErrNotJSONRPC: the payload is JSON but not JSON-RPC 2.0.
	ErrNotJSONRPC = errors.New("not a JSON-RPC 2.0 message")
	// ErrContentType: the content type is neither JSON nor an event stream.
	ErrContentType = errors.New("unsupported content type")
)

// ParseMessages parses a complete HTTP body of the given content type:
// application/json (one message or a batch) or text/event-stream (every
// "message" event's data is one message or a batch). It returns the messages
// it could parse and an error describing the payloads it could not.
func ParseMessages(contentType string, body []byte) ([]Message, error) {
	switch mediaType(contentType) {
	case "application/json":
		return decodePayload(body)
	case "text/event-stream":
		var msgs []Message
		var errs []error
		sp := newSSESplitter(int64(len(body))+1, func(data []byte) {
			m, err := decodePayload(data)
			msgs = append(msgs, m...)
			if err != nil {
				errs = append(errs, err)
			}
		})
		sp.write(body)
		return msgs, errors.Join(errs...)
	default:
		return nil, fmt.Errorf("%w: %q", ErrContentType, contentType)
	}
}

func mediaType(ct string) string {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return ""
	}
	return mt
}

// decodePayload decodes one JSON-RPC payload: a message or a batch.
func decodePayload(b []byte) ([]Message, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty payload", ErrNotJSONRPC)
	}
	if b[0] == '[' {
		var raws []json.RawMessage
		if err := json.Unmarshal(b, &raws); err != nil {
			return nil, fmt.Errorf("decode batch: %w", err)
		}
		var out []Message
		var errs []error
		for i, r := range raws {
			m, err := decodeMessage(r)
			if err != nil {
				errs = append(errs, fmt.Errorf("batch item %d: %w", i, err))
				continue
			}
			out = append(out, m)
		}
		return out, errors.Join(errs...)
	}
	m, err := decodeMessage(b)
	if err != nil {
		return nil, err
	}
	return []Message{m}, nil
}

func decodeMessage(b []byte) (Message, error) {
	var w wire
	if err := json.Unmarshal(b, &w); err != nil {
		return Message{}, fmt.Errorf("decode message: %w", err)
	}
	if w.JSONRPC != "2.0" {
		return Message{}, fmt.Errorf("%w: jsonrpc is %q", ErrNotJSONRPC, truncate(w.JSONRPC, 10))
	}
	m := Message{Method: w.Method, Params: w.Params, Result: w.Result, Error: w.Error}
	if len(w.ID) > 0 && !bytes.Equal(w.ID, []byte("null")) {
		id := bytes.TrimSpace(w.ID)
		switch {
		case id[0] == '"':
		case id[0] == '-' || (id[0] >= '0' && id[0] <= '9'):
			if _, err := strconv.ParseFloat(string(id), 64); err != nil {
				return Message{}, fmt.Errorf("%w: id is not a string or number", ErrNotJSONRPC)
			}
		default:
			return Message{}, fmt.Errorf("%w: id is not a string or number", ErrNotJSONRPC)
		}
		var cb bytes.Buffer
		if err := json.Compact(&cb, id); err == nil {
			id = cb.Bytes()
		}
		m.ID = id
	}
	if m.Kind() == KindInvalid {
		return Message{}, fmt.Errorf("%w: neither request, notification nor response", ErrNotJSONRPC)
	}
	return m, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
