package inject_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/omninode/bridge/controlplane/inject"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
)

// FuzzAdmissionReview feeds arbitrary bodies to the webhook. Whatever
// comes in, it never panics, answers 200 or a 4xx, always allows the pod,
// and any patch it returns applies to the request's pod and decodes into
// a Pod. Seeds: valid reviews of injectable and excluded pods, and broken
// ones (testdata/fuzz/FuzzAdmissionReview holds more).
func FuzzAdmissionReview(f *testing.F) {
	for _, seed := range [][]byte{
		review(f, "shop", appPod(nil)),
		review(f, "plain", appPod(nil)),
		review(f, "shop", appPod(func(p *corev1.Pod) {
			p.Annotations = map[string]string{inject.AnnotationSkipPorts: "1-2,80", inject.AnnotationRedirect: "port-mapping", inject.AnnotationSidecarMode: "container"}
		})),
		review(f, "shop", appPod(func(p *corev1.Pod) {
			p.Annotations = map[string]string{inject.AnnotationCPULimit: "1m", inject.AnnotationCPURequest: "2"}
		})),
		[]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"version":"v1","kind":"Pod"},"operation":"CREATE","object":{"metadata":null,"spec":{"containers":null}}}}`),
		[]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}`),
		[]byte(`[]`),
		[]byte(``),
	} {
		f.Add(seed)
	}
	cfg := inject.DefaultConfig()
	cfg.Namespaces = namespaces
	h, err := inject.Handler(cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/inject", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 400 && rec.Code < 500 {
			return
		}
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		var in, out admissionv1.AdmissionReview
		if err := json.Unmarshal(body, &in); err != nil {
			t.Fatalf("200 for a body that does not decode: %v", err)
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
			t.Fatalf("response does not decode: %v: %s", err, rec.Body)
		}
		if !out.Response.Allowed || out.Response.UID != in.Request.UID {
			t.Fatalf("response %+v: must allow, with the request's uid", out.Response)
		}
		if out.Response.Patch == nil {
			return
		}
		var pod corev1.Pod
		if err := json.Unmarshal(in.Request.Object.Raw, &pod); err != nil {
			t.Fatalf("patched a pod that does not decode: %v", err)
		}
		applyPatch(t, &pod, out.Response.Patch)
	})
}
