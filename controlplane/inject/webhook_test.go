package inject_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/omninode/bridge/controlplane/inject"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"
)

// webhook is an injector served over HTTPS by inject.ServeListener.
type webhook struct {
	url    string
	client *http.Client
	reg    *prometheus.Registry
}

// namespaces of the tests: "shop" is enabled, "plain" is not.
var namespaces = inject.StaticNamespaces{
	"shop":  {inject.AnnotationInject: inject.Enabled},
	"plain": {"team": "a"},
}

func startWebhook(t *testing.T, mutate func(*inject.Config)) *webhook {
	t.Helper()
	ca := newCA(t)
	certPEM, keyPEM := ca.issue(t, "omnibridge-controlplane", 2)
	certFile, keyFile := writeKeyPair(t, t.TempDir(), certPEM, keyPEM)
	reg := prometheus.NewRegistry()
	cfg := inject.DefaultConfig()
	cfg.Registry = reg
	cfg.Namespaces = namespaces
	if mutate != nil {
		mutate(&cfg)
	}
	h, err := inject.Handler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := inject.ServerTLSConfig(certFile, keyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- inject.ServeListener(ctx, ln, tlsCfg, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.pool},
	}}
	t.Cleanup(client.CloseIdleConnections)
	return &webhook{url: "https://" + ln.Addr().String() + "/inject", client: client, reg: reg}
}

// review wraps a pod in an AdmissionReview v1 CREATE request.
func review(t testing.TB, ns string, pod *corev1.Pod) []byte {
	t.Helper()
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	ar := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       types.UID("uid-" + pod.Name + pod.GenerateName),
			Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Namespace: ns,
			Name:      pod.Name,
			Operation: admissionv1.Create,
			Object:    runtime.RawExtension{Raw: raw},
		},
	}
	b, err := json.Marshal(ar)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// post sends a body and returns the status and the decoded review.
func (w *webhook) post(t testing.TB, body []byte) (int, *admissionv1.AdmissionReview, string) {
	t.Helper()
	resp, err := w.client.Post(w.url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil, string(b)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("decode response: %v: %s", err, b)
	}
	return resp.StatusCode, &out, string(b)
}

// admit posts a pod and checks the common answer: 200, the request's UID,
// allowed. It returns the pod with the patch applied, and the response.
func (w *webhook) admit(t *testing.T, ns string, pod *corev1.Pod) (*corev1.Pod, *admissionv1.AdmissionResponse) {
	t.Helper()
	code, out, body := w.post(t, review(t, ns, pod))
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" || out.Response == nil {
		t.Fatalf("not an AdmissionReview response: %s", body)
	}
	r := out.Response
	if r.UID != types.UID("uid-"+pod.Name+pod.GenerateName) || !r.Allowed {
		t.Fatalf("uid %q allowed %v, want the request's uid and allowed", r.UID, r.Allowed)
	}
	if r.Patch == nil {
		return pod, r
	}
	if r.PatchType == nil || *r.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("patch type %v, want JSONPatch", r.PatchType)
	}
	return applyPatch(t, pod, r.Patch), r
}

// applyPatch applies an RFC 6902 patch (add operations; written here
// independently of the injector's own applier) and decodes the result
// strictly into a Pod.
func applyPatch(t testing.TB, pod *corev1.Pod, patch []byte) *corev1.Pod {
	t.Helper()
	var ops []struct {
		Op    string          `json:"op"`
		Path  string          `json:"path"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(patch, &ops); err != nil {
		t.Fatalf("patch is not a JSON patch: %v", err)
	}
	raw, _ := json.Marshal(pod)
	var doc any
	_ = json.Unmarshal(raw, &doc)
	for _, op := range ops {
		if op.Op != "add" {
			t.Fatalf("unexpected op %q", op.Op)
		}
		var v any
		if err := json.Unmarshal(op.Value, &v); err != nil {
			t.Fatalf("op %s: %v", op.Path, err)
		}
		parts := strings.Split(op.Path, "/")[1:]
		for i, p := range parts {
			parts[i] = strings.NewReplacer("~1", "/", "~0", "~").Replace(p)
		}
		var add func(node any, parts []string) any
		add = func(node any, parts []string) any {
			switch n := node.(type) {
			case map[string]any:
				if len(parts) == 1 {
					n[parts[0]] = v
				} else if child, ok := n[parts[0]]; ok {
					n[parts[0]] = add(child, parts[1:])
				} else {
					t.Fatalf("op %s: no member %q", op.Path, parts[0])
				}
				return n
			case []any:
				i := len(n)
				if parts[0] != "-" {
					var err error
					if i, err = strconv.Atoi(parts[0]); err != nil || i > len(n) {
						t.Fatalf("op %s: bad index", op.Path)
					}
				}
				if len(parts) > 1 {
					n[i] = add(n[i], parts[1:])
					return n
				}
				out := append(append(append([]any{}, n[:i]...), v), n[i:]...)
				return out
			}
			t.Fatalf("op %s: cannot descend into %T", op.Path, node)
			return nil
		}
		doc = add(doc, parts)
	}
	b, _ := json.Marshal(doc)
	var out corev1.Pod
	if err := yaml.UnmarshalStrict(b, &out); err != nil {
		t.Fatalf("patched pod does not decode strictly: %v", err)
	}
	return &out
}

// appPod is a Deployment's pod, as the ReplicaSet controller creates it.
func appPod(mutate func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "checkout-7d9f8b6c4-",
			Labels:       map[string]string{"pod-template-hash": "7d9f8b6c4", "app.kubernetes.io/version": "1.2"},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "checkout-7d9f8b6c4", UID: "rs-uid", Controller: new(true),
			}},
		},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "registry.example.com/checkout:1.2",
			Ports: []corev1.ContainerPort{{ContainerPort: 8000}},
		}}},
	}
	if mutate != nil {
		mutate(p)
	}
	return p
}

func TestWebhookInjects(t *testing.T) {
	t.Parallel()
	w := startWebhook(t, nil)
	pod, resp := w.admit(t, "shop", appPod(nil))
	if resp.Patch == nil {
		t.Fatalf("no patch for a pod in an enabled namespace; warnings %v", resp.Warnings)
	}
	if pod.Annotations[inject.AnnotationInjected] != "true" {
		t.Errorf("annotations %v: no status marker", pod.Annotations)
	}
	if len(pod.Spec.InitContainers) != 2 || pod.Spec.InitContainers[0].Name != inject.InitContainerName || pod.Spec.InitContainers[1].Name != inject.ProxyContainerName {
		t.Fatalf("init containers %v, want the iptables init then the native sidecar", names(pod.Spec.InitContainers))
	}
	proxy := pod.Spec.InitContainers[1]
	if proxy.RestartPolicy == nil || *proxy.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("proxy restartPolicy %v, want Always (native sidecar)", proxy.RestartPolicy)
	}
	args := strings.Join(proxy.Args, " ")
	for _, want := range []string{"--service=checkout ", "--upstream=http://127.0.0.1:8000 ", "--listen=:15006 ", "--pod=$(POD_NAME)"} {
		if !strings.Contains(args+" ", want) {
			t.Errorf("proxy args %q lack %q", args, want)
		}
	}
	sc := proxy.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("proxy security context %+v: want non-root, read-only root", sc)
	}
	if proxy.Lifecycle == nil || proxy.Lifecycle.PreStop == nil || proxy.ReadinessProbe == nil || proxy.ReadinessProbe.HTTPGet.Port.IntValue() != inject.AdminPort {
		t.Errorf("proxy lacks its preStop hook or admin-port probes")
	}
	if len(pod.Spec.Volumes) != 2 || pod.Spec.Volumes[0].EmptyDir == nil {
		t.Errorf("volumes %+v, want the spool emptyDir and the xtables lock", pod.Spec.Volumes)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Errorf("containers %v, want the app's only", names(pod.Spec.Containers))
	}

	// Injecting the injected pod again changes nothing.
	again, resp := w.admit(t, "shop", pod)
	if resp.Patch != nil || again != pod {
		t.Errorf("second admission patched the pod again: %s", resp.Patch)
	}
	if got := counter(t, w.reg, "omnibridge_inject_admissions_total", "injected"); got != 1 {
		t.Errorf("injected admissions = %v, want 1", got)
	}
}

func names(cs []corev1.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

// counter returns one labelled series of a counter vector in reg (0 when absent).
func counter(t testing.TB, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestWebhookLeavesAlone: every pod the rules exclude is allowed with no
// patch and no warning.
func TestWebhookLeavesAlone(t *testing.T) {
	t.Parallel()
	w := startWebhook(t, nil)
	for _, tc := range []struct {
		name string
		ns   string
		pod  *corev1.Pod
	}{
		{"opt-out", "shop", appPod(func(p *corev1.Pod) {
			p.Annotations = map[string]string{inject.AnnotationInject: inject.Disabled}
		})},
		{"already-injected", "shop", appPod(func(p *corev1.Pod) {
			p.Annotations = map[string]string{inject.AnnotationInjected: "true"}
		})},
		{"namespace-not-enabled", "plain", appPod(nil)},
		{"namespace-unknown", "nowhere", appPod(nil)},
		{"host-network", "shop", appPod(func(p *corev1.Pod) { p.Spec.HostNetwork = true })},
		{"control-plane", "shop", appPod(func(p *corev1.Pod) { p.Labels[inject.LabelPartOf] = inject.PartOfValue })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, resp := w.admit(t, tc.ns, tc.pod)
			if resp.Patch != nil || resp.PatchType != nil || len(resp.Warnings) > 0 || got != tc.pod {
				t.Errorf("patch %s, warnings %v: want allowed unchanged", resp.Patch, resp.Warnings)
			}
		})
	}

	// A pod annotated enabled is injected in a namespace that is not.
	pod, resp := w.admit(t, "plain", appPod(func(p *corev1.Pod) {
		p.Annotations = map[string]string{inject.AnnotationInject: inject.Enabled}
	}))
	if resp.Patch == nil || len(pod.Spec.InitContainers) != 2 {
		t.Errorf("pod annotated enabled was not injected (warnings %v)", resp.Warnings)
	}

	// Not a pod creation: an UPDATE, and another kind.
	body := review(t, "shop", appPod(nil))
	for _, edit := range []func(*admissionv1.AdmissionReview){
		func(r *admissionv1.AdmissionReview) { r.Request.Operation = admissionv1.Update },
		func(r *admissionv1.AdmissionReview) {
			r.Request.Kind = metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
		},
	} {
		var r admissionv1.AdmissionReview
		_ = json.Unmarshal(body, &r)
		edit(&r)
		b, _ := json.Marshal(r)
		code, out, text := w.post(t, b)
		if code != http.StatusOK || !out.Response.Allowed || out.Response.Patch != nil {
			t.Errorf("status %d %s: want allowed unchanged", code, text)
		}
	}
}

// TestWebhookMalformed: what is not an AdmissionReview gets a 4xx (the
// API server applies failurePolicy: Ignore); an AdmissionReview whose pod
// cannot be used is admitted unchanged with a warning and a metric.
func TestWebhookMalformed(t *testing.T) {
	t.Parallel()
	w := startWebhook(t, nil)
	for _, tc := range []struct {
		name, method, ctype, body string
		code                      int
	}{
		{"not-json", http.MethodPost, "application/json", "{nope", http.StatusBadRequest},
		{"empty", http.MethodPost, "application/json", "", http.StatusBadRequest},
		{"v1beta1", http.MethodPost, "application/json", `{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}}`, http.StatusBadRequest},
		{"no-request", http.MethodPost, "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, http.StatusBadRequest},
		{"get", http.MethodGet, "application/json", "", http.StatusMethodNotAllowed},
		{"yaml", http.MethodPost, "application/yaml", "a: b", http.StatusUnsupportedMediaType},
	} {
		req, _ := http.NewRequest(tc.method, w.url, strings.NewReader(tc.body))
		req.Header.Set("Content-Type", tc.ctype)
		resp, err := w.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || len(b) == 0 {
			t.Errorf("%s: status %d %q, want %d with a reason", tc.name, resp.StatusCode, b, tc.code)
		}
	}
	if got := counter(t, w.reg, "omnibridge_inject_admissions_total", "malformed"); got != 6 {
		t.Errorf("malformed admissions = %v, want 6", got)
	}

	failOpen := func(name string, body []byte, reason string) {
		t.Helper()
		code, out, text := w.post(t, body)
		if code != http.StatusOK || !out.Response.Allowed || out.Response.Patch != nil {
			t.Fatalf("%s: status %d %s: want allowed unchanged", name, code, text)
		}
		if len(out.Response.Warnings) != 1 || !strings.Contains(out.Response.Warnings[0], reason) {
			t.Errorf("%s: warnings %v, want one saying %q", name, out.Response.Warnings, reason)
		}
	}
	var r admissionv1.AdmissionReview
	_ = json.Unmarshal(review(t, "shop", appPod(nil)), &r)
	r.Request.Object.Raw = []byte(`{"spec":{"containers":"not a list"}}`)
	b, _ := json.Marshal(r)
	failOpen("bad pod", b, "decode pod")

	failOpen("bad annotation", review(t, "shop", appPod(func(p *corev1.Pod) {
		p.Annotations = map[string]string{inject.AnnotationUpstreamPort: "http"}
	})), `annotation omninode.io/upstream-port: "http" is not a port`)

	for reason, want := range map[string]float64{"request": 1, "settings": 1} {
		if got := counter(t, w.reg, "omnibridge_inject_failures_total", reason); got != want {
			t.Errorf("failures{reason=%q} = %v, want %v", reason, got, want)
		}
	}
}

// slowNamespaces never answers before its context ends, and then fails.
type slowNamespaces struct{}

func (slowNamespaces) Namespace(ctx context.Context, _ string) (map[string]string, map[string]string, error) {
	<-ctx.Done()
	return nil, nil, ctx.Err()
}

type brokenNamespaces struct{}

func (brokenNamespaces) Namespace(context.Context, string) (map[string]string, map[string]string, error) {
	return nil, nil, errors.New("apiserver unreachable")
}

// TestWebhookFailsOpen: a namespace lookup that hangs or fails admits the
// pod unchanged within the budget, with a warning and a metric.
func TestWebhookFailsOpen(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		lookup inject.NamespaceLookup
		reason string
		warn   string
	}{
		{"timeout", slowNamespaces{}, "timeout", "no answer within 200ms"},
		{"error", brokenNamespaces{}, "namespace", "apiserver unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := startWebhook(t, func(c *inject.Config) { c.Namespaces = tc.lookup; c.Timeout = 200 * time.Millisecond })
			start := time.Now()
			_, resp := w.admit(t, "shop", appPod(nil))
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("answered after %v, budget 200ms", took)
			}
			if resp.Patch != nil || len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], tc.warn) {
				t.Errorf("patch %s warnings %v: want unchanged with a warning saying %q", resp.Patch, resp.Warnings, tc.warn)
			}
			if got := counter(t, w.reg, "omnibridge_inject_failures_total", tc.reason); got != 1 {
				t.Errorf("failures{reason=%q} = %v, want 1", tc.reason, got)
			}
		})
	}
}

func TestHandlerRejectsBadConfig(t *testing.T) {
	t.Parallel()
	cfg := inject.DefaultConfig()
	cfg.Image = ""
	cfg.Timeout = time.Hour
	_, err := inject.Handler(cfg)
	if err == nil || !strings.Contains(err.Error(), "Image") || !strings.Contains(err.Error(), "Timeout") {
		t.Fatalf("err = %v, want one naming Image and Timeout", err)
	}
}

// TestWebhookTrustsSelector: without a NamespaceLookup every namespace the
// API server sends counts as enabled (its namespaceSelector chose them),
// and pod-level opt-out still holds.
func TestWebhookTrustsSelector(t *testing.T) {
	t.Parallel()
	w := startWebhook(t, func(c *inject.Config) { c.Namespaces = nil })
	if pod, resp := w.admit(t, "anything", appPod(nil)); resp.Patch == nil || len(pod.Spec.InitContainers) != 2 {
		t.Errorf("pod not injected (warnings %v)", resp.Warnings)
	}
	optOut := appPod(func(p *corev1.Pod) { p.Annotations = map[string]string{inject.AnnotationInject: inject.Disabled} })
	if _, resp := w.admit(t, "anything", optOut); resp.Patch != nil {
		t.Errorf("opted-out pod patched: %s", resp.Patch)
	}
}
