package policy

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
)

// responseCache caches idempotent reads. The LRU has its own short lock;
// entries are immutable once stored.
type responseCache struct {
	lru     *lru.Cache[string, *cached]
	ttl     time.Duration
	maxBody int64
	vary    []string
	// varyOn remembers, per base key, the request headers the upstream's
	// Vary named, so that each variant gets its own entry.
	varyOn *lru.Cache[string, []string]
}

type cached struct {
	status  int
	header  http.Header
	body    []byte
	expires time.Time
}

func newCache(p *bridgev1.ResponseCachePolicy) *responseCache {
	c, _ := lru.New[string, *cached](int(p.GetMaxEntries())) // size validated ≥ 1
	vary := make([]string, 0, len(p.GetVaryHeaders()))
	for _, h := range p.GetVaryHeaders() {
		vary = append(vary, http.CanonicalHeaderKey(h))
	}
	v, _ := lru.New[string, []string](int(p.GetMaxEntries()))
	return &responseCache{lru: c, varyOn: v, ttl: p.GetTtl().AsDuration(), maxBody: p.GetMaxBodyBytes(), vary: vary}
}

// cacheableRequest says whether a request may be answered from or stored in
// the cache: GET or HEAD, no credentials, no no-store.
func cacheableRequest(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if r.Header.Get("Authorization") != "" || r.Header.Get("Cookie") != "" {
		return false
	}
	cc := strings.ToLower(r.Header.Get("Cache-Control"))
	return !strings.Contains(cc, "no-store") && !strings.Contains(cc, "no-cache") && r.Header.Get("Upgrade") == ""
}

func (c *responseCache) key(r *http.Request) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte(' ')
	b.WriteString(r.Host)
	b.WriteString(r.URL.RequestURI())
	for _, h := range c.vary {
		b.WriteByte('\n')
		b.WriteString(h)
		b.WriteByte('=')
		b.WriteString(strings.Join(r.Header.Values(h), ","))
	}
	return b.String()
}

// variantKey extends a base key with the values of the headers the
// upstream's Vary named for it.
func (c *responseCache) variantKey(base string, r *http.Request, names []string) string {
	if names == nil {
		v, ok := c.varyOn.Get(base)
		if !ok {
			return base
		}
		names = v
	}
	var b strings.Builder
	b.WriteString(base)
	for _, h := range names {
		b.WriteString("\nvary:")
		b.WriteString(h)
		b.WriteByte('=')
		b.WriteString(strings.Join(r.Header.Values(h), ","))
	}
	return b.String()
}

// get returns a fresh entry that matches the request's Vary values.
func (c *responseCache) get(base string, r *http.Request, now time.Time) *cached {
	key := c.variantKey(base, r, nil)
	e, ok := c.lru.Get(key)
	if !ok {
		return nil
	}
	if !now.Before(e.expires) {
		c.lru.Remove(key)
		return nil
	}
	return e
}

// ttlFor returns how long a response may be cached (0: not at all).
func (c *responseCache) ttlFor(status int, h http.Header) time.Duration {
	if status != http.StatusOK || h.Get("Set-Cookie") != "" {
		return 0
	}
	ttl := c.ttl
	for _, d := range strings.Split(strings.ToLower(h.Get("Cache-Control")), ",") {
		d = strings.TrimSpace(d)
		switch {
		case d == "no-store" || d == "private" || d == "no-cache":
			return 0
		case strings.HasPrefix(d, "max-age=") || strings.HasPrefix(d, "s-maxage="):
			_, v, _ := strings.Cut(d, "=")
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return 0
			}
			ttl = min(ttl, time.Duration(n)*time.Second)
		}
	}
	for _, v := range h.Values("Vary") {
		if strings.Contains(v, "*") {
			return 0
		}
	}
	return ttl
}

func (c *responseCache) put(base string, r *http.Request, rec *captureWriter, now time.Time) {
	ttl := c.ttlFor(rec.status, rec.Header())
	if ttl <= 0 || rec.overflow {
		return
	}
	e := &cached{status: rec.status, header: rec.Header().Clone(), body: bytes.Clone(rec.buf.Bytes()), expires: now.Add(ttl)}
	names := []string{}
	for _, v := range rec.Header().Values("Vary") {
		for _, h := range strings.Split(v, ",") {
			if h = http.CanonicalHeaderKey(strings.TrimSpace(h)); h != "" {
				names = append(names, h)
			}
		}
	}
	if len(names) > 0 {
		c.varyOn.Add(base, names)
	} else {
		c.varyOn.Remove(base)
	}
	c.lru.Add(c.variantKey(base, r, names), e)
}

func (e *cached) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	for k, v := range e.header {
		h[k] = v
	}
	h.Set("X-Omnibridge-Cache", "hit")
	w.WriteHeader(e.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(e.body)
	}
}

// captureWriter tees a response into a bounded buffer for the cache. It
// passes Flush through and exposes the underlying writer to
// http.ResponseController via Unwrap.
type captureWriter struct {
	http.ResponseWriter
	status   int
	buf      bytes.Buffer
	limit    int64
	overflow bool
}

func (c *captureWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *captureWriter) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	if !c.overflow {
		if int64(c.buf.Len()+len(p)) > c.limit {
			c.overflow = true
			c.buf.Reset()
		} else {
			c.buf.Write(p)
		}
	}
	return c.ResponseWriter.Write(p)
}

func (c *captureWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (c *captureWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
