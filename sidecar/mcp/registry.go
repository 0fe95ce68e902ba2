package mcp

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sync"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"google.golang.org/protobuf/types/known/structpb"
)

// registry remembers the tools seen in tools/list results, to tell new,
// changed, unchanged and removed tools apart.
type registry struct {
	c *Capture

	mu    sync.Mutex
	tools map[string]string // name -> schema hash
	// stale is set by notifications/tools/list_changed: the next complete
	// tools/list result is the new truth, and tools missing from it are removed.
	stale bool
}

func newRegistry(c *Capture) *registry { return &registry{c: c, tools: map[string]string{}} }

func (r *registry) markStale() {
	r.mu.Lock()
	r.stale = true
	r.mu.Unlock()
}

// tool is one entry of a tools/list result.
type tool struct {
	Name         string          `json:"name"`
	Title        string          `json:"title"`
	Description  string          `json:"description"`
	InputSchema  json.RawMessage `json:"inputSchema"`
	OutputSchema json.RawMessage `json:"outputSchema"`
	Annotations  json.RawMessage `json:"annotations"`
}

// onList diffs a tools/list result against what is known and emits the
// registration events. paged says the request asked for a later page.
func (r *registry) onList(result json.RawMessage, paged bool, trace *bridgev1.TraceContext) {
	var res struct {
		Tools      []tool `json:"tools"`
		NextCursor string `json:"nextCursor"`
	}
	if err := json.Unmarshal(result, &res); err != nil {
		r.c.m.dropped.WithLabelValues(dropParseError).Inc()
		return
	}
	complete := !paged && res.NextCursor == ""
	c := r.c
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := make(map[string]bool, len(res.Tools))
	for _, t := range res.Tools {
		if t.Name == "" {
			c.m.dropped.WithLabelValues(dropParseError).Inc()
			continue
		}
		seen[t.Name] = true
		hash := schemaHash(t.Description, t.InputSchema)
		old, known := r.tools[t.Name]
		typ, label := bridgev1.ToolEventType_TOOL_EVENT_TYPE_TOOL_DISCOVERED, toolDiscovered
		switch {
		case known && old == hash:
			continue
		case known:
			typ, label = bridgev1.ToolEventType_TOOL_EVENT_TYPE_TOOL_UPDATED, toolUpdated
		}
		r.tools[t.Name] = hash
		r.emit(typ, label, r.toolInfo(t, hash), trace)
	}
	if r.stale && complete {
		for name, hash := range r.tools {
			if !seen[name] {
				delete(r.tools, name)
				r.emit(bridgev1.ToolEventType_TOOL_EVENT_TYPE_TOOL_REMOVED, toolRemoved,
					&bridgev1.ToolInfo{Name: c.red.String(name), ServiceSource: c.cfg.Service, SchemaHash: hash}, trace)
			}
		}
		r.stale = false
	}
	c.m.tools.Set(float64(len(r.tools)))
}

func (r *registry) emit(typ bridgev1.ToolEventType, label string, info *bridgev1.ToolInfo, trace *bridgev1.TraceContext) {
	c := r.c
	ev := &bridgev1.ToolRegistrationEvent{
		Envelope:           c.src.Draft(c.cfg.Now(), trace),
		EventType:          typ,
		ToolInfo:           info,
		RegistrationMethod: bridgev1.RegistrationMethod_REGISTRATION_METHOD_DISCOVERY,
	}
	if err := c.src.Seal(ev); err != nil {
		c.cfg.Logger.Warn("mcp tool event invalid", "error", err)
		return
	}
	c.m.toolEvents.WithLabelValues(label).Inc()
	c.sink.Emit(ev)
}

func (r *registry) toolInfo(t tool, hash string) *bridgev1.ToolInfo {
	red := r.c.red
	info := &bridgev1.ToolInfo{
		Name:          red.String(t.Name),
		ServiceSource: r.c.cfg.Service,
		Description:   red.String(t.Description),
		SchemaHash:    hash,
		Signature:     r.toStruct(t.InputSchema),
	}
	md := map[string]any{}
	if t.Title != "" {
		md["title"] = t.Title
	}
	for k, raw := range map[string]json.RawMessage{"outputSchema": t.OutputSchema, "annotations": t.Annotations} {
		var v any
		if len(raw) > 0 && json.Unmarshal(raw, &v) == nil && v != nil {
			md[k] = v
		}
	}
	var ann struct {
		ReadOnly    *bool `json:"readOnlyHint"`
		Destructive *bool `json:"destructiveHint"`
		Idempotent  *bool `json:"idempotentHint"`
		OpenWorld   *bool `json:"openWorldHint"`
	}
	if len(t.Annotations) > 0 && json.Unmarshal(t.Annotations, &ann) == nil {
		for _, a := range []struct {
			v    *bool
			name string
		}{{ann.ReadOnly, "read_only"}, {ann.Destructive, "destructive"}, {ann.Idempotent, "idempotent"}, {ann.OpenWorld, "open_world"}} {
			if a.v != nil && *a.v {
				info.Capabilities = append(info.Capabilities, a.name)
			}
		}
	}
	if len(md) > 0 {
		raw, _ := json.Marshal(md)
		info.Metadata = r.toStruct(raw)
	}
	return info
}

// toStruct turns a JSON object into a Struct with every string and key
// capped and escaped. Schemas are descriptions, not data, so deny-listed
// field names are kept (a "password" property is part of the signature).
func (r *registry) toStruct(raw json.RawMessage) *structpb.Struct {
	var v any
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil || v == nil {
		return nil
	}
	m, ok := r.clean(v, 0).(map[string]any)
	if !ok {
		m = map[string]any{"value": r.clean(v, 0)}
	}
	s, err := structpb.NewStruct(m)
	if err != nil {
		return nil
	}
	return s
}

func (r *registry) clean(v any, depth int) any {
	if depth > 32 {
		return "[depth limit]"
	}
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[r.c.red.String(k)] = r.clean(e, depth+1)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = r.clean(e, depth+1)
		}
		return out
	case string:
		return r.c.red.String(t)
	default:
		return t
	}
}

// schemaHash is the hex SHA-256 of the canonical JSON (sorted keys, numbers
// as written, no spaces) of {"description": d, "inputSchema": schema}.
func schemaHash(description string, schema json.RawMessage) string {
	var s any
	if len(schema) > 0 {
		dec := json.NewDecoder(bytes.NewReader(schema))
		dec.UseNumber()
		if dec.Decode(&s) != nil {
			s = string(schema)
		}
	}
	b, _ := json.Marshal(map[string]any{"description": description, "inputSchema": s})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
