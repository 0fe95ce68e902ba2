package analyze

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/omninode/bridge/controlplane/analyze/stats"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// maxHistory bounds a tool's schema history.
const maxHistory = 50

type toolKey struct{ service, name string }

type toolState struct {
	desc    string
	sig     *structpb.Struct
	hash    string
	caps    []string
	history []*bridgev1.ToolVersion
	removed bool
	last    time.Time
	calls   uint64
	success uint64
	series  *stats.Series
	dirty   bool
	saved   int // history entries already persisted
}

// toolRegistry is the MCP tool registry.
type toolRegistry struct {
	cfg   Config
	mu    sync.Mutex
	tools map[toolKey]*toolState
}

func newToolRegistry(cfg Config) *toolRegistry {
	return &toolRegistry{cfg: cfg, tools: map[toolKey]*toolState{}}
}

func (r *toolRegistry) get(k toolKey) *toolState {
	t := r.tools[k]
	if t == nil {
		t = &toolState{series: stats.NewSeries(r.cfg.Layout)}
		r.tools[k] = t
	}
	return t
}

// schemaHash is the hex SHA-256 of the canonical JSON of signature and
// description, as the sidecar computes it when it fills schema_hash.
func schemaHash(sig *structpb.Struct, desc string) string {
	b, _ := protojson.MarshalOptions{}.Marshal(sig)
	h := sha256.New()
	h.Write(canonicalJSON(b))
	h.Write([]byte{0})
	h.Write([]byte(desc))
	return hex.EncodeToString(h.Sum(nil))
}

// canonicalJSON re-encodes JSON with sorted keys and no spaces.
func canonicalJSON(b []byte) []byte {
	var v structpb.Value
	if err := protojson.Unmarshal(b, &v); err != nil {
		return b
	}
	var sb strings.Builder
	writeCanon(&sb, &v)
	return []byte(sb.String())
}

func writeCanon(sb *strings.Builder, v *structpb.Value) {
	switch k := v.GetKind().(type) {
	case *structpb.Value_StructValue:
		ks := make([]string, 0, len(k.StructValue.GetFields()))
		for key := range k.StructValue.GetFields() {
			ks = append(ks, key)
		}
		sort.Strings(ks)
		sb.WriteByte('{')
		for i, key := range ks {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(sb, "%q:", key)
			writeCanon(sb, k.StructValue.GetFields()[key])
		}
		sb.WriteByte('}')
	case *structpb.Value_ListValue:
		sb.WriteByte('[')
		for i, e := range k.ListValue.GetValues() {
			if i > 0 {
				sb.WriteByte(',')
			}
			writeCanon(sb, e)
		}
		sb.WriteByte(']')
	default:
		b, _ := protojson.Marshal(v)
		sb.Write(b)
	}
}

func (r *toolRegistry) register(e *bridgev1.ToolRegistrationEvent) {
	info := e.GetToolInfo()
	k := toolKey{info.GetServiceSource(), info.GetName()}
	if k.service == "" || k.name == "" {
		return
	}
	at := e.GetEnvelope().GetOccurredAt().AsTime()
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.get(k)
	if at.After(t.last) {
		t.last = at
	}
	t.dirty = true
	if e.GetEventType() == bridgev1.ToolEventType_TOOL_EVENT_TYPE_TOOL_REMOVED {
		t.removed = true
		return
	}
	t.removed = false
	hash := info.GetSchemaHash()
	if hash == "" {
		hash = schemaHash(info.GetSignature(), info.GetDescription())
	}
	for _, h := range t.history {
		if h.GetSchemaHash() == hash {
			return // a schema seen before (or a replay): no drift
		}
	}
	v := &bridgev1.ToolVersion{SchemaHash: hash, Signature: info.GetSignature(), Description: info.GetDescription(), SeenAt: timestamppb.New(at)}
	t.history = append(t.history, v)
	sort.SliceStable(t.history, func(i, j int) bool {
		return t.history[i].GetSeenAt().AsTime().Before(t.history[j].GetSeenAt().AsTime())
	})
	if len(t.history) > maxHistory {
		t.history = t.history[len(t.history)-maxHistory:]
		t.saved = 0
	}
	cur := t.history[len(t.history)-1]
	t.hash, t.sig, t.desc = cur.GetSchemaHash(), cur.GetSignature(), cur.GetDescription()
	t.caps = append([]string(nil), info.GetCapabilities()...)
}

func (r *toolRegistry) call(service, name string, x stats.Sample) {
	if service == "" || name == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.tools[toolKey{service, name}]
	if t == nil {
		if len(r.tools) >= r.cfg.MaxRoutes {
			return
		}
		t = r.get(toolKey{service, name})
	}
	t.calls++
	if !x.Failed {
		t.success++
	}
	t.series.Add(x)
	if x.At.After(t.last) {
		t.last = x.At
	}
}

// minToolCalls is the fewest calls in each compared window for a
// degradation verdict.
const minToolCalls = 10

// degraded compares the last 5 minutes with the rest of the hour, and tests
// the per-minute median latency for a rising trend.
func (r *toolRegistry) degraded(t *toolState, now time.Time) (bool, string) {
	hour := t.series.Window(now, time.Hour)
	recent := t.series.Window(now, 5*time.Minute)
	earlierN := hour.Requests - recent.Requests
	if recent.Requests >= minToolCalls && earlierN >= minToolCalls {
		rs := 1 - recent.Errors/recent.Requests
		es := 1 - (hour.Errors-recent.Errors)/earlierN
		if es-rs >= 0.2 {
			return true, fmt.Sprintf("success rate fell from %.0f%% to %.0f%% in the last 5 min (%d calls)", 100*es, 100*rs, int(recent.Requests))
		}
		em := (hour.SumMs - recent.SumMs) / earlierN
		if em > 0 && recent.Mean() >= 2*em {
			return true, fmt.Sprintf("mean latency rose from %.1fms to %.1fms in the last 5 min", em, recent.Mean())
		}
	}
	pts := t.series.Points(now, r.cfg.TrendPoints, r.cfg.MinBucketWeight)
	med := make([]float64, len(pts))
	for i, p := range pts {
		med[i] = p.Median
	}
	if tr := r.cfg.Trend.TestTrend(med); tr.Trend == stats.TrendRising {
		return true, fmt.Sprintf("latency rising: Mann-Kendall z=%.2f, %+.0f%% over %d min", tr.Zscore, 100*tr.Change, tr.N)
	}
	return false, ""
}

func (r *toolRegistry) list(service string, now time.Time) []*bridgev1.Tool {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*bridgev1.Tool
	for k, t := range r.tools {
		if t.removed || (service != "" && k.service != service) {
			continue
		}
		tool := &bridgev1.Tool{Name: k.name, Service: k.service, Description: t.desc, Signature: t.sig, Calls: t.calls, LastSeen: timestamppb.New(t.last)}
		for _, h := range t.history {
			tool.History = append(tool.History, proto.Clone(h).(*bridgev1.ToolVersion))
		}
		if t.calls > 0 {
			tool.SuccessRate = float64(t.success) / float64(t.calls)
		}
		base := t.series.Window(now, r.cfg.Layout.Coarse*time.Duration(r.cfg.Layout.CoarseCount))
		tool.P50, tool.P99 = ms(base.Quantile(0.5)), ms(base.Quantile(0.99))
		tool.Degraded, tool.DegradedReason = r.degraded(t, now)
		for ok, o := range r.tools {
			if ok.service != k.service && !o.removed && alike(k.name, t.sig, ok.name, o.sig) {
				tool.IntegrationOpportunities = append(tool.IntegrationOpportunities, ok.service+"/"+ok.name)
			}
		}
		sort.Strings(tool.IntegrationOpportunities)
		out = append(out, tool)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Service != out[j].Service {
			return out[i].Service < out[j].Service
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// alike: near-identical names (normalized edit similarity ≥ 0.8) or
// near-identical schemas (Jaccard of property names ≥ 0.8, at least two).
func alike(n1 string, s1 *structpb.Struct, n2 string, s2 *structpb.Struct) bool {
	a, b := normName(n1), normName(n2)
	if a == b || similarity(a, b) >= 0.8 {
		return true
	}
	p1, p2 := props(s1), props(s2)
	if len(p1) < 2 || len(p2) < 2 {
		return false
	}
	inter := 0
	for p := range p1 {
		if _, ok := p2[p]; ok {
			inter++
		}
	}
	return float64(inter)/float64(len(p1)+len(p2)-inter) >= 0.8
}

func normName(s string) string {
	var sb strings.Builder
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			sb.WriteRune(r)
		}
	}
	return sb.String()
}

func props(s *structpb.Struct) map[string]struct{} {
	out := map[string]struct{}{}
	for k := range s.GetFields()["properties"].GetStructValue().GetFields() {
		out[k] = struct{}{}
	}
	return out
}

// similarity is 1 - Levenshtein distance / longer length.
func similarity(a, b string) float64 {
	ra, rb := []rune(a), []rune(b)
	if len(ra) == 0 && len(rb) == 0 {
		return 1
	}
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			c := 1
			if ra[i-1] == rb[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return 1 - float64(prev[len(rb)])/math.Max(float64(len(ra)), float64(len(rb)))
}
