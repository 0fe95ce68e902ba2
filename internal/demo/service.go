package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// shutdownTimeout bounds how long Serve waits for in-flight requests.
const shutdownTimeout = 2 * time.Second

// Service is one demo service: an HTTP handler plus its lifecycle.
type Service struct {
	// Name is the service name ("storefront", "orders", ...).
	Name string
	// Version is the version it reports.
	Version string

	cfg     Config
	handler http.Handler
	client  *http.Client
	hooks   *hookReporter
	closers []func()
}

func newService(name string, cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("validate %s config: %w", name, err)
	}
	cfg = cfg.withDefaults()
	return &Service{
		Name:    name,
		Version: cfg.Version,
		cfg:     cfg,
		client:  &http.Client{Timeout: cfg.CallTimeout},
		hooks:   newHookReporter(cfg.HooksURL, cfg.Logger.With("service", name)),
	}, nil
}

// Handler returns the service's HTTP handler (for tests and embedding).
func (s *Service) Handler() http.Handler { return s.handler }

// Run listens on Config.Listen and serves until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.Name, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends, then drains within a bounded time and
// returns nil on a clean stop. It closes ln.
func (s *Service) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		s.close()
		return fmt.Errorf("serve %s: %w", s.Name, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// Long-lived streams (MCP server-sent events) may outlive the drain
		// time; they are cut rather than failing the stop.
		s.cfg.Logger.Debug("cut connections after drain timeout", "service", s.Name, "err", err)
		_ = srv.Close()
	}
	<-errc
	s.close()
	s.hooks.wait()
	return nil
}

func (s *Service) close() {
	for _, c := range s.closers {
		c()
	}
	s.closers = nil
}

// httpError is an error with the HTTP status the service answers with.
type httpError struct {
	status int
	code   string
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, code, format string, args ...any) error {
	return &httpError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

// opFunc handles one operation and returns the JSON body of a success.
type opFunc func(ctx context.Context, r *http.Request) (map[string]any, error)

// handle wraps an operation: propagation, JSON answer, version header, hook.
func (s *Service) handle(operation string, fn opFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		m := incomingMeta(r)
		ctx := withMeta(r.Context(), m)
		start := time.Now()
		out, err := fn(ctx, r)
		w.Header().Set(HeaderVersion, s.Version)
		w.Header().Set("Content-Type", "application/json")
		ex := execution{operation: operation, params: map[string]any{"path": r.URL.Path}, started: start, elapsed: time.Since(start), err: err}
		if err != nil {
			status, code := http.StatusInternalServerError, "internal"
			var he *httpError
			if errors.As(err, &he) {
				status, code = he.status, he.code
			}
			ex.errCode = code
			s.cfg.Metrics.observe(s.Name, s.Version, operation, status)
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": err.Error(), "code": code, "service": s.Name, "version": s.Version})
		} else {
			ex.output = map[string]any{"ok": true}
			s.cfg.Metrics.observe(s.Name, s.Version, operation, http.StatusOK)
			_ = json.NewEncoder(w).Encode(out)
		}
		s.hooks.report(m, ex)
	}
}

// call makes a JSON call to a dependency and decodes a 2xx answer into out.
// A non-2xx answer becomes an httpError with status 502 that names the
// dependency and its status; 4xx answers keep their status.
func (s *Service) call(ctx context.Context, dep, method, path string, in, out any) error {
	base, err := s.cfg.dep(dep)
	if err != nil {
		return err
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s request: %w", dep, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(base, "/")+path, body)
	if err != nil {
		return fmt.Errorf("build %s request: %w", dep, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if m, ok := metaFrom(ctx); ok {
		m.apply(req.Header)
	}
	// Name the caller, so the callee's sidecar records the edge
	// (source_service). In the mesh a caller's own sidecar would set it; the
	// demo runs sidecars inbound only, so the service says who it is.
	req.Header.Set("X-Omninode-Source-Service", s.Name)
	start := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		return errorf(http.StatusBadGateway, "unavailable", "call %s %s: connection failed after %d ms", dep, path, time.Since(start).Milliseconds())
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
			Code  string `json:"code"`
		}
		_ = json.Unmarshal(raw, &e)
		status := http.StatusBadGateway
		if resp.StatusCode < 500 {
			status = resp.StatusCode
		}
		code := e.Code
		if code == "" {
			code = "upstream_" + fmt.Sprint(resp.StatusCode)
		}
		return errorf(status, code, "call %s %s: status %d: %s", dep, path, resp.StatusCode, e.Error)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return errorf(http.StatusBadGateway, "bad_response", "decode %s answer: %v", dep, err)
		}
	}
	return nil
}

// readJSON decodes a small JSON request body into v, answering 400 on bad input.
func readJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	if err := dec.Decode(v); err != nil {
		return errorf(http.StatusBadRequest, "invalid_argument", "decode request body: %v", err)
	}
	return nil
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// jitter returns base plus up to spread of random extra time.
func jitter(base, spread time.Duration) time.Duration {
	if spread <= 0 {
		return base
	}
	return base + time.Duration(randInt(int(spread)))
}
