package hooks

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/gen/omninode/bridge/v1/bridgev1connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Paths of the JSON endpoints.
const (
	PathLifecycle = "/v1/hooks/lifecycle"
	PathExecution = "/v1/hooks/execution"
	PathSchema    = "/v1/hooks/schema"
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(PathLifecycle, func(w http.ResponseWriter, r *http.Request) {
		req := &bridgev1.ReportLifecycleRequest{}
		s.serveJSON(w, r, kindLifecycle, req, func() (proto.Message, error) { return s.reportLifecycle(req, r.Header) })
	})
	mux.HandleFunc(PathExecution, func(w http.ResponseWriter, r *http.Request) {
		req := &bridgev1.ReportExecutionRequest{}
		s.serveJSON(w, r, kindExecution, req, func() (proto.Message, error) { return s.reportExecution(req, r.Header) })
	})
	mux.HandleFunc("GET "+PathSchema, s.serveSchema)
	path, h := bridgev1connect.NewHookServiceHandler(&connectService{s: s}, s.connectOptions()...)
	mux.Handle(path, s.countConnectRejections(h))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such hook endpoint; see " + PathSchema, "reason": "not_found"})
	})
	return mux
}

// serveJSON decodes a JSON hook into req (unknown fields are an error),
// calls handle and writes its answer or the rejection.
func (s *Server) serveJSON(w http.ResponseWriter, r *http.Request, kind string, req proto.Message, handle func() (proto.Message, error)) {
	fail := func(e *rejectError) {
		s.rejected(kind, e)
		s.writeReject(w, e)
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.m.received.WithLabelValues(kind).Inc()
		fail(reject(ReasonMethod, "method %s not allowed; use POST", r.Method))
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			s.m.received.WithLabelValues(kind).Inc()
			fail(reject(ReasonContentType, "content type must be application/json"))
			return
		}
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		s.m.received.WithLabelValues(kind).Inc()
		fail(reject(ReasonTooLarge, "body of %d bytes over the limit of %d", r.ContentLength, s.cfg.MaxBodyBytes))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		s.m.received.WithLabelValues(kind).Inc()
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			fail(reject(ReasonTooLarge, "body over the limit of %d bytes", s.cfg.MaxBodyBytes))
			return
		}
		fail(reject(ReasonMalformed, "read body: %v", err))
		return
	}
	if err := DecodeJSON(body, req); err != nil {
		s.m.received.WithLabelValues(kind).Inc()
		fail(reject(ReasonMalformed, "%v", err))
		return
	}
	resp, err := handle()
	if err != nil {
		var re *rejectError
		if errors.As(err, &re) {
			s.writeReject(w, re)
			return
		}
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal error", "reason": "internal"})
		return
	}
	out, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(resp)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal error", "reason": "internal"})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// DecodeJSON decodes a hook's JSON form (protojson: proto or lowerCamel field
// names, enums by name or number) into msg. Unknown fields are an error, so a
// misspelled field is reported instead of silently dropped.
func DecodeJSON(body []byte, msg proto.Message) error {
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(body, msg); err != nil {
		return errors.New("decode json: " + err.Error())
	}
	return nil
}

func (s *Server) writeReject(w http.ResponseWriter, e *rejectError) {
	writeJSON(w, httpStatus(e.reason), map[string]string{"error": e.msg, "reason": e.reason})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func (s *Server) serveSchema(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"service":        s.cfg.Service,
		"max_body_bytes": s.cfg.MaxBodyBytes,
		"docs":           "docs/hooks.md",
		"endpoints": map[string]any{
			"POST " + PathLifecycle: map[string]any{
				"message":  "omninode.bridge.v1.ReportLifecycleRequest (protojson; unknown fields rejected)",
				"required": []string{"event_type"},
				"fields": []string{"event_type (SERVICE_STARTED|SERVICE_STOPPED|SERVICE_HEALTH_CHANGE)",
					"service_info{name (must be " + s.cfg.Service + " or empty),version,capabilities[],endpoints[{url,protocol}],dependencies[]}",
					"health (HEALTHY|DEGRADED|UNHEALTHY; required for SERVICE_HEALTH_CHANGE)", "health_reason", "idempotency_key"},
				"response": "{\"event_id\": \"...\"}",
			},
			"POST " + PathExecution: map[string]any{
				"message":  "omninode.bridge.v1.ReportExecutionRequest (protojson; unknown fields rejected)",
				"required": []string{"correlation_id", "pre_context or results"},
				"fields": []string{"correlation_id", "pre_context{session_id,operation (required),parameters{},timestamp}",
					"results{success,output{},error,execution_time (required, \"0s\"..\"86400s\"),error_code}", "idempotency_key"},
				"response": "{\"event_id\": \"...\"} (empty until results arrive)",
			},
			"connect": "/omninode.bridge.v1.HookService/{ReportLifecycle,ReportExecution} (Connect, gRPC, gRPC-Web)",
		},
		"errors": "4xx with {\"error\": message, \"reason\": label}; 413 when the body is too large",
	})
}
