package analyze

import (
	"fmt"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
)

// maxSteps bounds one journey's steps.
const maxSteps = 100

type journey struct {
	steps    []string
	failed   bool // the latest step failed
	dropStep string
	last     time.Time
}

// sessionStore keeps recent user journeys, bounded by an LRU.
type sessionStore struct {
	mu sync.Mutex
	m  *lru.Cache[string, *journey]
}

func newSessionStore(n int) (*sessionStore, error) {
	c, err := lru.New[string, *journey](n)
	if err != nil {
		return nil, fmt.Errorf("create session cache: %w", err)
	}
	return &sessionStore{m: c}, nil
}

func (s *sessionStore) add(session, step string, failed bool, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.m.Get(session)
	if !ok {
		j = &journey{}
		s.m.Add(session, j)
	}
	if len(j.steps) < maxSteps {
		j.steps = append(j.steps, step)
	}
	j.failed = failed
	if failed {
		j.dropStep = step
	} else {
		j.dropStep = ""
	}
	if at.After(j.last) {
		j.last = at
	}
}

// list returns the most recently active journeys first, and drop-offs per
// step over every journey kept: a journey whose latest step failed dropped
// off there.
func (s *sessionStore) list(limit int) *bridgev1.ListJourneysResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := &bridgev1.ListJourneysResponse{DropOffs: map[string]uint64{}}
	ks := s.m.Keys() // oldest first
	for i := len(ks) - 1; i >= 0; i-- {
		j, _ := s.m.Peek(ks[i])
		if j.failed {
			resp.DropOffs[j.dropStep]++
		}
		if limit <= 0 || len(resp.Journeys) < limit {
			resp.Journeys = append(resp.Journeys, &bridgev1.Journey{SessionId: ks[i], Steps: append([]string(nil), j.steps...), Dropped: j.failed, DropStep: j.dropStep})
		}
	}
	return resp
}
