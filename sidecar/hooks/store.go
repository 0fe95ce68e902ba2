package hooks

import (
	"container/list"
	"time"
)

// ttlMap is a bounded map whose entries expire a fixed time after they were
// stored. Entries are kept in insertion order, which (with one TTL) is expiry
// order, so sweeping is a walk from the front. Not safe for concurrent use.
type ttlMap[V any] struct {
	ttl   time.Duration
	max   int
	order *list.List // of *ttlEntry[V], oldest first
	byKey map[string]*list.Element
}

type ttlEntry[V any] struct {
	key     string
	expires time.Time
	val     V
}

func newTTLMap[V any](ttl time.Duration, max int) *ttlMap[V] {
	return &ttlMap[V]{ttl: ttl, max: max, order: list.New(), byKey: map[string]*list.Element{}}
}

// sweep drops expired entries and returns how many it dropped.
func (m *ttlMap[V]) sweep(now time.Time) int {
	n := 0
	for e := m.order.Front(); e != nil; e = m.order.Front() {
		en := e.Value.(*ttlEntry[V])
		if now.Before(en.expires) {
			break
		}
		m.order.Remove(e)
		delete(m.byKey, en.key)
		n++
	}
	return n
}

func (m *ttlMap[V]) get(key string, now time.Time) (V, bool) {
	if e, ok := m.byKey[key]; ok {
		en := e.Value.(*ttlEntry[V])
		if now.Before(en.expires) {
			return en.val, true
		}
	}
	var zero V
	return zero, false
}

// full reports whether adding a new key would exceed the cap.
func (m *ttlMap[V]) full(key string) bool {
	_, exists := m.byKey[key]
	return !exists && len(m.byKey) >= m.max
}

// put stores key (replacing an older entry), evicting the oldest entry when
// the map is full. It reports whether it evicted one.
func (m *ttlMap[V]) put(key string, val V, now time.Time) (evicted bool) {
	m.remove(key)
	if len(m.byKey) >= m.max {
		if e := m.order.Front(); e != nil {
			m.order.Remove(e)
			delete(m.byKey, e.Value.(*ttlEntry[V]).key)
			evicted = true
		}
	}
	m.byKey[key] = m.order.PushBack(&ttlEntry[V]{key: key, expires: now.Add(m.ttl), val: val})
	return evicted
}

func (m *ttlMap[V]) remove(key string) {
	if e, ok := m.byKey[key]; ok {
		m.order.Remove(e)
		delete(m.byKey, key)
	}
}

func (m *ttlMap[V]) len() int { return len(m.byKey) }
