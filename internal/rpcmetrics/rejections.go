package rpcmetrics

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
)

// Rejections counts and logs the refused calls of the configured services.
type Rejections struct {
	services []service
	rejected *prometheus.CounterVec
	log      *slog.Logger
	throttle *throttle
}

// service is a Service prepared for the request path.
type service struct {
	entry  string
	index  int
	prefix string            // "/pkg.Service/"
	procs  map[string]string // path -> label (the path itself)
}

// procedure returns path's label: the procedure, or Unknown.
func (s *service) procedure(path string) string {
	if p, ok := s.procs[path]; ok {
		return p
	}
	return Unknown
}

// New registers the counter and returns Rejections.
func New(cfg Config) (*Rejections, error) {
	if cfg.LogEvery == 0 {
		cfg.LogEvery = DefaultConfig().LogEvery
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("validate rpcmetrics config: %w", err)
	}
	r := &Rejections{
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricName,
			Help: "Control-plane RPCs refused before their service's handler accepted them (authentication, unknown procedure, content type or method, framing, size, decoding), by entry point, procedure and the Connect code the caller got."},
			[]string{"entry", "procedure", "code"}),
		log:      cfg.Logger,
		throttle: newThrottle(len(cfg.Services), cfg.LogEvery),
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	for i, s := range cfg.Services {
		svc := service{entry: s.Entry, index: i, prefix: "/" + string(s.Desc.FullName()) + "/", procs: map[string]string{}}
		methods := s.Desc.Methods()
		for j := range methods.Len() {
			p := svc.prefix + string(methods.Get(j).Name())
			svc.procs[p] = p
		}
		r.services = append(r.services, svc)
	}
	if err := cfg.Registry.Register(r.rejected); err != nil {
		return nil, fmt.Errorf("register %s: %w", MetricName, err)
	}
	return r, nil
}

// match returns the observed service that path belongs to, or nil.
func (r *Rejections) match(path string) *service {
	for i := range r.services {
		if strings.HasPrefix(path, r.services[i].prefix) {
			return &r.services[i]
		}
	}
	return nil
}

type callKey struct{}

// Middleware observes the calls to the configured services that next
// serves; every other path goes straight to next. Put it in front of
// authentication so that refusals there are counted too, and add
// HandlerOption to each observed service's handler. The response is passed
// through as it is written, flushes included, and the wrapped writer
// unwraps for http.ResponseController.
func (r *Rejections) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		svc := r.match(req.URL.Path)
		if svc == nil {
			next.ServeHTTP(w, req)
			return
		}
		c := newCall(w)
		next.ServeHTTP(c, req.WithContext(context.WithValue(req.Context(), callKey{}, c)))
		if code := c.refusal(); code != 0 {
			r.count(svc, svc.procedure(req.URL.Path), code, c.status, req.RemoteAddr)
		}
	})
}

// count records one refused call.
func (r *Rejections) count(svc *service, procedure string, code connect.Code, status int, peer string) {
	r.rejected.WithLabelValues(svc.entry, procedure, code.String()).Inc()
	ok, suppressed := r.throttle.allow(svc.index, code)
	if !ok {
		return
	}
	// Never the error message or the body: a decode error can quote the
	// input, and the input can hold a secret.
	r.log.Warn("control plane call refused", "entry", svc.entry, "procedure", procedure,
		"code", code.String(), "http_status", status, "peer", peer, "suppressed", suppressed)
}

// throttle allows one log line per slot (entry point, code) per interval.
type throttle struct {
	every int64 // nanoseconds
	now   func() time.Time
	slots []slot
}

type slot struct {
	next       atomic.Int64
	suppressed atomic.Int64
}

const codes = 17 // connect.Code values 0..16

func newThrottle(entries int, every time.Duration) *throttle {
	return &throttle{every: int64(every), now: time.Now, slots: make([]slot, entries*codes)}
}

// allow reports whether a line for (entry, code) may be logged now, and how
// many were suppressed since the last one.
func (t *throttle) allow(entry int, code connect.Code) (bool, int64) {
	if code > codes-1 {
		code = connect.CodeUnknown
	}
	s := &t.slots[entry*codes+int(code)]
	now := t.now().UnixNano()
	next := s.next.Load()
	if now < next || !s.next.CompareAndSwap(next, now+t.every) {
		s.suppressed.Add(1)
		return false, 0
	}
	return true, s.suppressed.Swap(0)
}
