package analyze

import (
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/omninode/bridge/controlplane/analyze/patterns"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// maxPatternSet bounds the services, routes, codes and examples kept per pattern.
const maxPatternSet = 32

type patternInfo struct {
	group       *patterns.Group
	codes       map[string]struct{}
	services    map[string]struct{}
	routes      map[string]struct{}
	examples    []string
	first, last time.Time
	rootCauses  map[string]uint64 // service -> failing traces it was the root cause of
	savedSize   uint64            // frequency already written to the table
	dirty       bool
}

// patternBook is the failure-pattern miner with per-pattern bookkeeping.
type patternBook struct {
	mu    sync.Mutex
	miner *patterns.Miner
	info  map[string]*patternInfo
	// memo maps a raw message to its pattern, so repeated messages skip the
	// masking regexps; cleared when it reaches memoSize.
	memo map[string]string
}

// memoSize bounds the raw-message memo.
const memoSize = 8192

func newPatternBook() *patternBook {
	return &patternBook{miner: patterns.NewMiner(patternID), info: map[string]*patternInfo{}, memo: map[string]string{}}
}

// patternNamespace seeds the name-based UUIDs of patterns.
var patternNamespace = uuid.MustParse("6f6d6e69-6e6f-6465-8000-706174746572")

// patternID is a UUIDv5 of the first template: replicas that meet the same
// failure name it alike, so their rows merge in intelligence_patterns.
func patternID(tokens []string) string {
	return uuid.NewSHA1(patternNamespace, []byte(strings.Join(tokens, " "))).String()
}

func addBounded(m map[string]struct{}, v string) {
	if v == "" || len(m) >= maxPatternSet {
		return
	}
	m[v] = struct{}{}
}

func newPatternInfo(g *patterns.Group) *patternInfo {
	return &patternInfo{group: g, codes: map[string]struct{}{}, services: map[string]struct{}{}, routes: map[string]struct{}{}, rootCauses: map[string]uint64{}}
}

// observe files one failure message; returns the pattern id. With count
// false (a replay over persisted patterns) it only matches.
func (b *patternBook) observe(msg, code, service, route string, at time.Time, count bool) string {
	if len(msg) > 4096 {
		msg = msg[:4096]
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	n := uint64(0)
	if count {
		n = 1
	}
	var (
		g       *patterns.Group
		changed bool
	)
	if id, ok := b.memo[msg]; ok && b.info[id] != nil {
		g = b.info[id].group
		g.Size += n
	} else {
		g, changed = b.miner.Match(msg, n)
		if len(b.memo) >= memoSize {
			clear(b.memo)
		}
		b.memo[msg] = g.ID
	}
	pi := b.info[g.ID]
	if pi == nil {
		pi = newPatternInfo(g)
		b.info[g.ID] = pi
	}
	if !count && !changed {
		return g.ID
	}
	addBounded(pi.codes, code)
	addBounded(pi.services, service)
	addBounded(pi.routes, service+" "+route)
	if len(pi.examples) < 3 {
		pi.examples = append(pi.examples, msg)
	}
	if pi.first.IsZero() || at.Before(pi.first) {
		pi.first = at
	}
	if at.After(pi.last) {
		pi.last = at
	}
	pi.dirty = true
	return g.ID
}

// attribute moves one trace's root-cause vote for a pattern.
func (b *patternBook) attribute(id, from, to string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	pi := b.info[id]
	if pi == nil {
		return
	}
	if from != "" && pi.rootCauses[from] > 0 {
		pi.rootCauses[from]--
	}
	if to != "" {
		pi.rootCauses[to]++
	}
	pi.dirty = true
}

func keys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (pi *patternInfo) rootCause() string {
	best, bestN := "", uint64(0)
	for s, n := range pi.rootCauses {
		if n > bestN || (n == bestN && s < best) {
			best, bestN = s, n
		}
	}
	return best
}

func (pi *patternInfo) proto() *bridgev1.FailurePattern {
	return &bridgev1.FailurePattern{
		Id:               pi.group.ID,
		PatternType:      "failure_template",
		Template:         pi.group.Template(),
		Codes:            keys(pi.codes),
		Frequency:        pi.group.Size,
		FirstSeen:        timestamppb.New(pi.first),
		LastSeen:         timestamppb.New(pi.last),
		Services:         keys(pi.services),
		Routes:           keys(pi.routes),
		Confidence:       pi.group.Confidence(),
		RootCauseService: pi.rootCause(),
		Examples:         append([]string(nil), pi.examples...),
	}
}

func (b *patternBook) list(service string, limit int) []*bridgev1.FailurePattern {
	b.mu.Lock()
	var out []*bridgev1.FailurePattern
	for _, pi := range b.info {
		if pi.group.Size == 0 {
			continue
		}
		if _, ok := pi.services[service]; service != "" && !ok {
			continue
		}
		out = append(out, pi.proto())
	}
	b.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Frequency != out[j].Frequency {
			return out[i].Frequency > out[j].Frequency
		}
		return out[i].Template < out[j].Template
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}
