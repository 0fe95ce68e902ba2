package analyze

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// span is one hop of a trace as events describe it.
type span struct {
	id, parent, eventID  string
	service, source, op  string
	start                time.Time
	dur                  time.Duration
	success              bool
	status, err, pattern string
	weight               float64
	server               bool // the sidecar's server span of a communication event
	attributed           bool // its time was attributed to its caller's route
	uid, parentUID       string
	children             []*span
	depth                int
	critical             bool
	selfTime             time.Duration
}

func (s *span) end() time.Time { return s.start.Add(s.dur) }

// trace is the events of one trace or correlation id.
type trace struct {
	key, corr, session string
	spans              []*span
	updated            time.Time
	dirty              bool
	// votes remember what this trace told the pattern book and the
	// ecosystem, so a rebuild moves votes instead of adding them again.
	patternVotes map[string][2]string // span uid -> {pattern id, root-cause service}
	causeVotes   map[string]string    // span uid -> root-cause service it failed because of
}

// traceStore assembles traces within a TTL and a memory budget.
type traceStore struct {
	cfg     Config
	mu      sync.Mutex
	traces  *lru.Cache[string, *trace]
	corr    *lru.Cache[string, string]
	dirty   []*trace
	dropped prometheus.Counter
	// What sweeps feed; set by the analyzer after construction.
	routes *routeTable
	pats   *patternBook
	eco    *ecosystem
}

func newTraceStore(cfg Config, dropped prometheus.Counter) (*traceStore, error) {
	t := &traceStore{cfg: cfg, dropped: dropped}
	var err error
	if t.traces, err = lru.New[string, *trace](cfg.MaxTraces); err != nil {
		return nil, fmt.Errorf("create trace cache: %w", err)
	}
	if t.corr, err = lru.New[string, string](cfg.MaxTraces); err != nil {
		return nil, fmt.Errorf("create correlation cache: %w", err)
	}
	return t, nil
}

func (t *traceStore) add(key, corr string, s *span, session string, _ time.Time) {
	if key == "" {
		return
	}
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	tr, ok := t.traces.Get(key)
	if !ok || now.Sub(tr.updated) > t.cfg.TraceTTL {
		tr = &trace{key: key, corr: corr, patternVotes: map[string][2]string{}, causeVotes: map[string]string{}}
		t.traces.Add(key, tr)
	}
	if corr != "" && corr != key {
		t.corr.Add(corr, key)
	}
	if len(tr.spans) >= t.cfg.MaxSpansPerTrace {
		t.dropped.Inc()
		return
	}
	tr.spans = append(tr.spans, s)
	tr.updated = now
	if session != "" {
		tr.session = session
	}
	if !tr.dirty {
		tr.dirty = true
		t.dirty = append(t.dirty, tr)
		// Bound the memory of changed (possibly evicted) traces between
		// periodic sweeps: sweep inline, amortized O(1) per event.
		if len(t.dirty) >= t.cfg.MaxTraces && t.routes != nil {
			t.sweepLocked(now)
		}
	}
}

// tree is a built call tree.
type tree struct {
	root      *span
	critical  []string
	cause     *span
	reason    string
	synthetic bool
}

// build links the spans of a trace into a tree and analyzes it.
func (tr *trace) build() tree {
	byUID := map[string]*span{}
	spans := append([]*span(nil), tr.spans...)
	sort.SliceStable(spans, func(i, j int) bool { return spans[i].start.Before(spans[j].start) })
	// Server spans claim their span ids first; a hook's execution in the
	// same span becomes that span's child.
	for pass := 0; pass < 2; pass++ {
		for _, s := range spans {
			if s.server != (pass == 0) {
				continue
			}
			s.children, s.critical, s.depth, s.selfTime, s.parentUID = nil, false, 0, 0, ""
			uid := s.id
			if _, taken := byUID[uid]; uid == "" || taken {
				if taken && !s.server && byUID[uid].server {
					s.parentUID = uid
				}
				uid = s.id + "/" + s.op + "/" + short(s.eventID)
			}
			s.uid = uid
			byUID[uid] = s
		}
	}
	for _, s := range spans {
		if s.parentUID == "" && s.parent != "" {
			if p, ok := byUID[s.parent]; ok && p != s {
				s.parentUID = p.uid
			}
		}
		if s.parentUID == "" {
			s.parentUID = containerOf(s, spans)
		}
	}
	// Cut cycles (malformed parent ids): walk up at most len(spans) steps.
	for _, s := range spans {
		seen := map[*span]bool{s: true}
		for p := byUID[s.parentUID]; p != nil; p = byUID[p.parentUID] {
			if seen[p] {
				s.parentUID = ""
				break
			}
			seen[p] = true
		}
	}
	var roots []*span
	for _, s := range spans {
		if p := byUID[s.parentUID]; p != nil {
			p.children = append(p.children, s)
		} else {
			roots = append(roots, s)
		}
	}
	var out tree
	switch len(roots) {
	case 0:
		return out
	case 1:
		out.root = roots[0]
	default:
		r := &span{uid: "trace", op: "trace", success: true, start: roots[0].start, children: roots}
		end := roots[0].end()
		for _, c := range roots {
			if c.end().After(end) {
				end = c.end()
			}
			r.success = r.success && c.success
		}
		r.dur = end.Sub(r.start)
		out.root, out.synthetic = r, true
	}
	setDepth(out.root, 0)
	// Critical path: follow the child that finishes last.
	for s := out.root; s != nil; {
		s.critical = true
		out.critical = append(out.critical, s.uid)
		var next *span
		for _, c := range s.children {
			if next == nil || c.end().After(next.end()) || (c.end().Equal(next.end()) && c.dur > next.dur) {
				next = c
			}
		}
		s.selfTime = s.dur
		if next != nil {
			s.selfTime = max(0, s.dur-next.dur)
		}
		s = next
	}
	out.cause, out.reason = rootCause(out.root)
	return out
}

func short(id string) string {
	if len(id) > 12 {
		return id[len(id)-12:]
	}
	return id
}

// containerOf finds, for a span without a known parent, the innermost span
// of its caller that contains it in time: the caller is the source service
// of a server span, or the service itself for a hook's execution.
func containerOf(s *span, spans []*span) string {
	const slack = time.Millisecond
	caller := s.source
	if !s.server {
		caller = s.service
	}
	if caller == "" {
		return ""
	}
	var best *span
	for _, c := range spans {
		if c == s || c.service != caller || (!s.server && !c.server) {
			continue
		}
		if c.start.After(s.start.Add(slack)) || c.end().Add(slack).Before(s.end()) {
			continue
		}
		if c.dur < s.dur || (c.dur == s.dur && !c.server) {
			continue
		}
		if best == nil || c.dur < best.dur {
			best = c
		}
	}
	if best == nil {
		return ""
	}
	return best.uid
}

func setDepth(s *span, d int) {
	s.depth = d
	sort.SliceStable(s.children, func(i, j int) bool { return s.children[i].start.Before(s.children[j].start) })
	for _, c := range s.children {
		setDepth(c, d+1)
	}
}

// rootCause finds the deepest failing hop none of whose children failed:
// the failure its failing callers inherited.
func rootCause(root *span) (*span, string) {
	var best *span
	var walk func(s *span)
	walk = func(s *span) {
		failedChild := false
		for _, c := range s.children {
			walk(c)
			if !c.success {
				failedChild = true
			}
		}
		if !s.success && !failedChild && s.uid != "trace" {
			if best == nil || s.depth > best.depth || (s.depth == best.depth && s.start.Before(best.start)) {
				best = s
			}
		}
	}
	walk(root)
	if best == nil {
		return nil, ""
	}
	var callers []string
	for p := parentOf(root, best); p != nil; p = parentOf(root, p) {
		if !p.success && p.uid != "trace" && p.service != best.service && (len(callers) == 0 || callers[len(callers)-1] != p.service) {
			callers = append(callers, p.service)
		}
	}
	what := best.err
	if what == "" {
		what = "failed"
	}
	reason := fmt.Sprintf("%s %s failed at depth %d (%s: %s), the deepest failing hop with no failing callee", best.service, best.op, best.depth, orDash(best.status), what)
	if len(callers) > 0 {
		reason += "; its callers " + strings.Join(callers, ", ") + " failed after it"
	}
	return best, reason
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func parentOf(root, x *span) *span {
	var found *span
	var walk func(s *span) bool
	walk = func(s *span) bool {
		for _, c := range s.children {
			if c == x {
				found = s
				return true
			}
			if walk(c) {
				return true
			}
		}
		return false
	}
	walk(root)
	return found
}

// sweep rebuilds the traces that changed since the last sweep: it
// attributes downstream call time to the callers' routes, moves root-cause
// votes of patterns and of caller→callee pairs, and expires old traces.
func (t *traceStore) sweep(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sweepLocked(now)
}

func (t *traceStore) sweepLocked(now time.Time) {
	routes, pats, eco := t.routes, t.pats, t.eco
	for _, tr := range t.dirty {
		tr.dirty = false
		tree := tr.build()
		if tree.root == nil {
			continue
		}
		var visit func(s *span)
		visit = func(s *span) {
			for _, c := range s.children {
				if !tree.synthetic || s.uid != "trace" {
					if c.server && !c.attributed {
						c.attributed = true
						routes.addCall(routeKey{s.service, s.op}, s.start, c.service, float64(c.dur)/float64(time.Millisecond), c.weight)
					}
				}
				visit(c)
			}
		}
		visit(tree.root)
		cause := ""
		if tree.cause != nil {
			cause = tree.cause.service
		}
		for _, s := range tr.spans {
			if s.success {
				continue
			}
			if s.pattern != "" {
				old := tr.patternVotes[s.uid]
				if old[0] != s.pattern || old[1] != cause {
					if old[0] != "" {
						pats.attribute(old[0], old[1], "")
					}
					pats.attribute(s.pattern, "", cause)
					tr.patternVotes[s.uid] = [2]string{s.pattern, cause}
				}
			}
			if old := tr.causeVotes[s.uid]; old != cause {
				eco.causeVote(s.service, old, cause)
				tr.causeVotes[s.uid] = cause
			}
		}
	}
	clear(t.dirty)
	t.dirty = t.dirty[:0]
	for {
		_, tr, ok := t.traces.GetOldest()
		if !ok || now.Sub(tr.updated) <= t.cfg.TraceTTL {
			break
		}
		t.traces.RemoveOldest()
	}
}

// get returns the call tree of a trace or correlation id.
func (t *traceStore) get(id string) (*bridgev1.GetTraceResponse, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tr, ok := t.traces.Peek(id)
	if !ok {
		key, ok2 := t.corr.Peek(id)
		if !ok2 {
			return nil, false
		}
		if tr, ok = t.traces.Peek(key); !ok {
			return nil, false
		}
	}
	tree := tr.build()
	if tree.root == nil {
		return nil, false
	}
	resp := &bridgev1.GetTraceResponse{Id: id, Root: spanProto(tree.root), CriticalPath: tree.critical, SessionId: tr.session}
	if tree.cause != nil {
		resp.RootCauseService = tree.cause.service
		resp.RootCauseSpanId = tree.cause.uid
		resp.RootCauseReason = tree.reason
	}
	return resp, true
}

func spanProto(s *span) *bridgev1.TraceSpan {
	p := &bridgev1.TraceSpan{
		SpanId: s.uid, ParentSpanId: s.parentUID, Service: s.service, Operation: s.op,
		Start: timestamppb.New(s.start), Duration: durationpb.New(s.dur), Success: s.success,
		Status: s.status, Error: s.err, Critical: s.critical, SelfTime: durationpb.New(s.selfTime),
	}
	for _, c := range s.children {
		p.Children = append(p.Children, spanProto(c))
	}
	return p
}
