package inject

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// maxReviewBytes bounds an AdmissionReview body; the API server's own
// object limit is about 3 MiB.
const maxReviewBytes = 8 << 20

// Handler returns the mutating admission webhook for cfg: it answers
// AdmissionReview v1 requests for pods with the JSON patch that injects the
// sidecar. Serve it over TLS (see [Serve]).
func Handler(cfg Config) (http.Handler, error) {
	in, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return in.Handler(), nil
}

// Handler returns the injector's admission webhook.
func (in *Injector) Handler() http.Handler { return http.HandlerFunc(in.serveAdmission) }

func (in *Injector) serveAdmission(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { in.metrics.duration.Observe(time.Since(start).Seconds()) }()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		in.malformed(w, http.StatusMethodNotAllowed, fmt.Errorf("method %s: only POST", r.Method))
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		in.malformed(w, http.StatusUnsupportedMediaType, fmt.Errorf("content type %q: want application/json", r.Header.Get("Content-Type")))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxReviewBytes))
	if err != nil {
		in.malformed(w, http.StatusBadRequest, fmt.Errorf("read request: %w", err))
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil {
		in.malformed(w, http.StatusBadRequest, fmt.Errorf("decode AdmissionReview: %w", err))
		return
	}
	if review.APIVersion != admissionv1.SchemeGroupVersion.String() || review.Kind != "AdmissionReview" || review.Request == nil {
		in.malformed(w, http.StatusBadRequest, fmt.Errorf("not an admission.k8s.io/v1 AdmissionReview request (apiVersion %q, kind %q)", review.APIVersion, review.Kind))
		return
	}
	resp := in.admitWithin(r.Context(), review.Request)
	resp.UID = review.Request.UID
	out, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp})
	if err != nil { // cannot happen with these types; fail open by status
		in.malformed(w, http.StatusInternalServerError, fmt.Errorf("encode AdmissionReview: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

// malformed answers a request that is not an AdmissionReview. The API
// server then applies the webhook's failurePolicy (Ignore in deploy/).
func (in *Injector) malformed(w http.ResponseWriter, code int, err error) {
	in.metrics.admissions.WithLabelValues("malformed").Inc()
	in.log.Warn("malformed admission request", "err", err)
	http.Error(w, err.Error(), code)
}

// admitWithin answers within the configured budget, whatever a namespace
// lookup does; past it, or on any error or panic, the pod is admitted as is.
func (in *Injector) admitWithin(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	ctx, cancel := context.WithTimeout(ctx, in.cfg.Timeout)
	defer cancel()
	type result struct {
		resp *admissionv1.AdmissionResponse
		err  *failure
	}
	done := make(chan result, 1) // buffered: a late answer never blocks
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- result{err: &failure{"internal", fmt.Errorf("panic: %v", p)}}
			}
		}()
		resp, err := in.admit(ctx, req)
		done <- result{resp, err}
	}()
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		res.err = &failure{"timeout", fmt.Errorf("no answer within %v: %w", in.cfg.Timeout, ctx.Err())}
	}
	if res.err != nil {
		in.metrics.failures.WithLabelValues(res.err.reason).Inc()
		in.metrics.admissions.WithLabelValues("failed_open").Inc()
		in.log.Warn("sidecar not injected (failing open)", "namespace", req.Namespace, "name", podName(req), "reason", res.err.reason, "err", res.err.err)
		return &admissionv1.AdmissionResponse{
			Allowed:  true,
			Warnings: []string{"omnibridge: sidecar not injected: " + res.err.err.Error()},
		}
	}
	return res.resp
}

// failure is an error that fails open, with its metric reason.
type failure struct {
	reason string
	err    error
}

func (in *Injector) admit(ctx context.Context, req *admissionv1.AdmissionRequest) (*admissionv1.AdmissionResponse, *failure) {
	allowed := &admissionv1.AdmissionResponse{Allowed: true}
	if req.Kind.Group != "" || req.Kind.Kind != "Pod" || req.SubResource != "" || req.Operation != admissionv1.Create {
		in.metrics.admissions.WithLabelValues("skipped").Inc()
		return allowed, nil
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return nil, &failure{"request", fmt.Errorf("decode pod: %w", err)}
	}
	t := Target{Meta: &pod.ObjectMeta, Spec: &pod.Spec, Owner: ownerName(&pod)}
	if v := pod.Annotations[AnnotationInject]; v != Enabled && v != Disabled {
		enabled, err := in.namespaceEnabled(ctx, req.Namespace)
		if err != nil {
			return nil, &failure{"namespace", err}
		}
		t.Enabled = enabled
	}
	ops, d, err := in.Patch(t)
	if err != nil {
		return nil, &failure{"settings", err}
	}
	if !d.Inject {
		in.metrics.admissions.WithLabelValues("skipped").Inc()
		in.log.Debug("sidecar not injected", "namespace", req.Namespace, "name", podName(req), "reason", d.Reason)
		return allowed, nil
	}
	patch, err := json.Marshal(ops)
	if err != nil {
		return nil, &failure{"internal", fmt.Errorf("encode patch: %w", err)}
	}
	if ctx.Err() != nil { // too late: the API server has given up
		return nil, &failure{"timeout", ctx.Err()}
	}
	pt := admissionv1.PatchTypeJSONPatch
	in.metrics.admissions.WithLabelValues("injected").Inc()
	in.log.Info("sidecar injected", "namespace", req.Namespace, "name", podName(req), "service", serviceName(t))
	return &admissionv1.AdmissionResponse{Allowed: true, Patch: patch, PatchType: &pt}, nil
}

func (in *Injector) namespaceEnabled(ctx context.Context, ns string) (bool, error) {
	if in.cfg.Namespaces == nil {
		return true, nil // the namespaceSelector only sends enabled namespaces
	}
	labels, ann, err := in.cfg.Namespaces.Namespace(ctx, ns)
	if errors.Is(err, ErrNamespaceNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up namespace %q: %w", ns, err)
	}
	return namespaceEnabled(labels, ann), nil
}

// ownerName is the controlling workload's name; for a Deployment's
// ReplicaSet, the Deployment's (the pod-template-hash suffix removed).
func ownerName(pod *corev1.Pod) string {
	for _, o := range pod.OwnerReferences {
		if o.Controller == nil || !*o.Controller {
			continue
		}
		if h := pod.Labels["pod-template-hash"]; o.Kind == "ReplicaSet" && h != "" {
			return strings.TrimSuffix(o.Name, "-"+h)
		}
		return o.Name
	}
	return ""
}

func podName(req *admissionv1.AdmissionRequest) string {
	if req.Name != "" {
		return req.Name
	}
	var m struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	_ = json.Unmarshal(req.Object.Raw, &m)
	return m.Metadata.GenerateName + "*"
}
