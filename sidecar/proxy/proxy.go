package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/omninode/bridge/sidecar/policy"
	"github.com/omninode/bridge/sidecar/route"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Proxy is the sidecar's reverse proxy; it is an http.Handler.
type Proxy struct {
	cfg      Config
	log      *slog.Logger
	handler  http.Handler
	rp       *httputil.ReverseProxy
	routes   *route.Templater
	tracer   trace.Tracer
	prop     propagation.TextMapPropagator
	policy   *policy.Engine
	metrics  *metrics
	upstream string // the configured upstream URL, reported as the endpoint when no weights chose one
	pool     sync.Pool
	// lite: no TracerProvider was configured; ids and propagation are done
	// by liteTrace instead of SDK spans (see tracelite.go).
	lite bool
	// allow is HeaderAllow resolved against the redactor (nil: call
	// Redactor.Headers per event).
	allow []allowedHeader
	// userHeaders are cfg.UserHeaders in canonical form (Header.Get then
	// does not canonicalise, which allocates, per request).
	userHeaders []string
	// serviceHeader is the X-Omninode-Service value, shared by requests.
	serviceHeader []string
	// refused counts what Listener and TLSListener see refused before a
	// request reaches the proxy (refusal.go); made on first use.
	refusalsOnce sync.Once
	refused      *refusals
}

type exchangeKey struct{}

// exchange is the per-request state, pooled.
type exchange struct {
	rec        recorder
	body       *countingBody
	clientSpan trace.Span
	proxyErr   string
	traceID    string
	lt         liteTrace
}

// New builds a Proxy.
func New(cfg Config) (*Proxy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Proxy{cfg: cfg, log: cfg.Logger, routes: route.New(cfg.Routes), policy: cfg.Policy, upstream: cfg.Upstream.String()}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.policy == nil {
		p.policy = &policy.Engine{}
	}
	if len(p.cfg.HeaderAllow) == 0 {
		p.cfg.HeaderAllow = DefaultHeaderAllow
	}
	tp := cfg.TracerProvider
	if tp == nil {
		// Spans that are never exported only need ids for events and
		// propagation (a sampled parent is honoured): liteTrace makes them.
		p.lite = true
		tp = noop.NewTracerProvider()
	}
	p.tracer = tp.Tracer("github.com/omninode/bridge/sidecar/proxy")
	p.serviceHeader = []string{cfg.Service}
	for _, h := range cfg.UserHeaders {
		p.userHeaders = append(p.userHeaders, textproto.CanonicalMIMEHeaderKey(h))
	}
	if cfg.Redactor != nil {
		p.allow = resolveAllow(cfg.Redactor, p.cfg.HeaderAllow)
	}
	p.prop = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	p.pool.New = func() any { return new(exchange) }
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	p.metrics = m

	p.rp = &httputil.ReverseProxy{
		Rewrite:      p.rewrite,
		Transport:    p.policy.Transport(p.transport()),
		BufferPool:   bufferPool{},
		ErrorHandler: p.errorHandler,
		ErrorLog:     slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
	}
	var h http.Handler = p.rp
	if cfg.Middleware != nil {
		h = cfg.Middleware(h)
	}
	p.handler = p.policy.Wrap(h)
	return p, nil
}

// transport picks HTTP/1.1 or h2c towards the upstream by the client's
// protocol, so that gRPC (HTTP/2 only) and WebSocket (HTTP/1.1 only) both
// pass. An https upstream negotiates by ALPN.
func (p *Proxy) transport() http.RoundTripper {
	dial := (&net.Dialer{Timeout: p.cfg.DialTimeout, KeepAlive: 30 * time.Second}).DialContext
	h1 := &http.Transport{
		Proxy:                 nil,
		DialContext:           dial,
		MaxIdleConns:          p.cfg.MaxIdleConns,
		MaxIdleConnsPerHost:   p.cfg.MaxIdleConns,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: p.cfg.ResponseHeaderTimeout,
		ForceAttemptHTTP2:     p.cfg.Upstream.Scheme == "https",
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		DisableCompression:    true,
	}
	if p.cfg.Upstream.Scheme == "https" {
		return h1
	}
	h2c := &http.Transport{
		DialContext:           dial,
		MaxIdleConns:          p.cfg.MaxIdleConns,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: p.cfg.ResponseHeaderTimeout,
		DisableCompression:    true,
		Protocols:             new(http.Protocols),
	}
	h2c.Protocols.SetUnencryptedHTTP2(true)
	return byProto{h1: h1, h2: h2c}
}

type byProto struct{ h1, h2 http.RoundTripper }

func (b byProto) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.ProtoMajor == 2 {
		return b.h2.RoundTrip(r)
	}
	return b.h1.RoundTrip(r)
}

type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *(buffers.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }

func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(p.cfg.Upstream)
	if p.cfg.PreserveHost {
		pr.Out.Host = pr.In.Host
	}
	// Keep the client's chain, unless the client made it hop-by-hop.
	if xff := pr.In.Header["X-Forwarded-For"]; len(xff) > 0 && !connectionListed(pr.In.Header, "x-forwarded-for") {
		pr.Out.Header["X-Forwarded-For"] = xff
	}
	pr.SetXForwarded()
	h := pr.Out.Header
	for k := range h {
		if len(k) > 11 && strings.EqualFold(k[:11], "x-omninode-") {
			delete(h, k)
		}
	}
	h["X-Omninode-Service"] = p.serviceHeader
	x, _ := pr.Out.Context().Value(exchangeKey{}).(*exchange)
	if x == nil {
		return
	}
	if h.Get("X-Correlation-Id") == "" && x.traceID != "" {
		h["X-Correlation-Id"] = []string{x.traceID}
	}
	if p.lite {
		delete(h, "Traceparent")
		delete(h, "Tracestate")
		h["Traceparent"] = []string{x.lt.traceparent()}
		if x.lt.state != "" {
			h["Tracestate"] = []string{x.lt.state}
		}
		return
	}
	ctx, span := p.tracer.Start(pr.Out.Context(), "proxy upstream", clientKind)
	x.clientSpan = span
	delete(h, "Traceparent")
	delete(h, "Tracestate")
	p.prop.Inject(ctx, propagation.HeaderCarrier(h))
}

func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	x, _ := r.Context().Value(exchangeKey{}).(*exchange)
	status := http.StatusBadGateway
	msg := "upstream error"
	var ne net.Error
	switch {
	case x != nil && x.body != nil && x.body.bad.Load():
		status, msg = http.StatusBadRequest, "malformed request body"
	case errors.Is(err, context.Canceled):
		msg = "client canceled"
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		status, msg = http.StatusGatewayTimeout, "upstream timeout"
	case isRefused(err):
		msg = "connection refused"
	}
	if x != nil {
		x.proxyErr = msg
	}
	p.metrics.upstreamErrors.WithLabelValues(msg).Inc()
	p.log.Debug("proxy: upstream request failed", "reason", msg)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg + "\n"))
}

func isRefused(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// reject answers a request the proxy refuses to forward.
func (p *Proxy) reject(w http.ResponseWriter, label, reason string) {
	p.metrics.rejected.WithLabelValues(label).Inc()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Connection", "close")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write([]byte("bad request: " + reason + "\n"))
}

var _ http.Handler = (*Proxy)(nil)

// Upstream returns the upstream URL.
func (p *Proxy) Upstream() *url.URL { return p.cfg.Upstream }

// connectionListed reports whether the Connection header names name (lower case).
func connectionListed(h http.Header, name string) bool {
	for _, v := range h["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), name) {
				return true
			}
		}
	}
	return false
}
