package store

import (
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
)

// jsonw appends a JSON object field by field. It is a small hand-written
// encoder because the JSONB columns are built for every stored event and
// protojson would cost more CPU than the COPY itself; protojson is used only
// for the free-form Struct fields, and only when they are set.
type jsonw struct {
	b     []byte
	first bool
}

func newJSON(buf []byte) *jsonw { return &jsonw{b: append(buf[:0], '{'), first: true} }

func (w *jsonw) key(k string) {
	if !w.first {
		w.b = append(w.b, ',')
	}
	w.first = false
	w.b = appendJSONString(w.b, k)
	w.b = append(w.b, ':')
}

func (w *jsonw) str(k, v string) {
	w.key(k)
	w.b = appendJSONString(w.b, v)
}

// strNonEmpty writes the field only when v is not empty.
func (w *jsonw) strNonEmpty(k, v string) {
	if v != "" {
		w.str(k, v)
	}
}

func (w *jsonw) int(k string, v int64) {
	w.key(k)
	w.b = strconv.AppendInt(w.b, v, 10)
}

func (w *jsonw) float(k string, v float64) {
	w.key(k)
	w.b = strconv.AppendFloat(w.b, v, 'g', -1, 64)
}

func (w *jsonw) bool(k string, v bool) {
	w.key(k)
	w.b = strconv.AppendBool(w.b, v)
}

func (w *jsonw) strs(k string, vs []string) {
	w.key(k)
	w.b = append(w.b, '[')
	for i, v := range vs {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.b = appendJSONString(w.b, v)
	}
	w.b = append(w.b, ']')
}

func (w *jsonw) strMap(k string, m map[string]string) {
	w.key(k)
	sub := jsonw{b: append(w.b, '{'), first: true}
	for mk, mv := range m {
		sub.str(mk, mv)
	}
	w.b = append(sub.b, '}')
}

// structField writes a protobuf Struct as JSON when it is set.
func (w *jsonw) structField(k string, s *structpb.Struct) {
	if s == nil {
		return
	}
	raw, err := protojson.Marshal(s)
	if err != nil {
		return
	}
	w.key(k)
	w.b = append(w.b, raw...)
}

// raw writes an already encoded JSON value.
func (w *jsonw) raw(k string, v []byte) {
	w.key(k)
	w.b = append(w.b, v...)
}

func (w *jsonw) bytes() []byte { return append(w.b, '}') }

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes U+FFFD,
// which PostgreSQL's jsonb accepts (it rejects \u0000, so NUL becomes U+FFFD too).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == 0:
				b = append(b, `\ufffd`...)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
