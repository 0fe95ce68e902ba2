package redact

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"google.golang.org/protobuf/types/known/structpb"
)

// depthLimit replaces values nested deeper than MaxDepth.
const depthLimit = "[depth limit]"

// normField normalizes a JSON field name for deny-list matching: lower case,
// without '-', '_' and surrounding space.
func normField(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	return strings.NewReplacer("-", "", "_", "", " ", "").Replace(s)
}

// SensitiveField reports whether a JSON field of this name is redacted: it is
// on a deny list (ignoring case, '-' and '_'), or ends in "token", "password",
// "passwd", "secret", "apikey", "privatekey" or "credentials".
func (r *Redactor) SensitiveField(name string) bool {
	n := normField(name)
	if r.fields[n] {
		return true
	}
	for _, suf := range []string{"token", "password", "passwd", "secret", "apikey", "privatekey", "credentials", "credential"} {
		if strings.HasSuffix(n, suf) {
			return true
		}
	}
	return false
}

// JSON redacts a JSON document: values of deny-listed fields become
// "REDACTED" at any depth, strings (and keys) are capped and escaped, numbers
// keep their text. The output is compact JSON. Invalid JSON is an error and
// nothing of it is returned.
func (r *Redactor) JSON(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode json: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("decode json: trailing data after the document")
	}
	out, err := json.Marshal(r.value(v, 0))
	if err != nil {
		return nil, fmt.Errorf("encode json: %w", err)
	}
	return out, nil
}

func (r *Redactor) value(v any, depth int) any {
	if depth > r.cfg.MaxDepth {
		return depthLimit
	}
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			ck := r.String(k)
			// Check the capped key too, so redacting twice changes nothing.
			if r.SensitiveField(k) || r.SensitiveField(ck) {
				out[ck] = Redacted
				continue
			}
			out[ck] = r.value(e, depth+1)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = r.value(e, depth+1)
		}
		return out
	case string:
		return r.String(t)
	case json.Number:
		if len(t) > 64 {
			// A number that long is a payload, not a measurement.
			return r.String(string(t))
		}
		return t
	default: // bool, nil
		return t
	}
}

// Struct returns a redacted copy of s (s itself is not changed): values of
// deny-listed fields become "REDACTED", strings and keys are capped and
// escaped. A nil s gives nil.
func (r *Redactor) Struct(s *structpb.Struct) *structpb.Struct {
	if s == nil {
		return nil
	}
	return r.structAt(s, 0)
}

func (r *Redactor) structAt(s *structpb.Struct, depth int) *structpb.Struct {
	out := &structpb.Struct{Fields: make(map[string]*structpb.Value, len(s.GetFields()))}
	for k, v := range s.GetFields() {
		ck := r.String(k)
		if r.SensitiveField(k) || r.SensitiveField(ck) {
			out.Fields[ck] = structpb.NewStringValue(Redacted)
			continue
		}
		out.Fields[ck] = r.pbValue(v, depth+1)
	}
	return out
}

func (r *Redactor) pbValue(v *structpb.Value, depth int) *structpb.Value {
	if depth > r.cfg.MaxDepth {
		return structpb.NewStringValue(depthLimit)
	}
	switch k := v.GetKind().(type) {
	case *structpb.Value_StructValue:
		return structpb.NewStructValue(r.structAt(k.StructValue, depth))
	case *structpb.Value_ListValue:
		vals := k.ListValue.GetValues()
		l := &structpb.ListValue{Values: make([]*structpb.Value, len(vals))}
		for i, e := range vals {
			l.Values[i] = r.pbValue(e, depth+1)
		}
		return structpb.NewListValue(l)
	case *structpb.Value_StringValue:
		return structpb.NewStringValue(r.String(k.StringValue))
	case *structpb.Value_NumberValue:
		return structpb.NewNumberValue(k.NumberValue)
	case *structpb.Value_BoolValue:
		return structpb.NewBoolValue(k.BoolValue)
	default: // null or unset
		return structpb.NewNullValue()
	}
}

// JSONStruct redacts a JSON object and returns it as a Struct (for event
// fields such as parameters). A document that is not an object is wrapped as
// {"value": document}.
func (r *Redactor) JSONStruct(raw []byte) (*structpb.Struct, error) {
	red, err := r.JSON(raw)
	if err != nil {
		return nil, err
	}
	var v any
	if err := json.Unmarshal(red, &v); err != nil {
		return nil, fmt.Errorf("decode redacted json: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		m = map[string]any{"value": v}
	}
	s, err := structpb.NewStruct(m)
	if err != nil {
		return nil, fmt.Errorf("convert json to struct: %w", err)
	}
	return s, nil
}
