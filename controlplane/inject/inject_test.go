package inject_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/omninode/bridge/controlplane/inject"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDecide(t *testing.T) {
	t.Parallel()
	spec := func(mut func(*corev1.PodSpec)) *corev1.PodSpec {
		s := &corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}
		if mut != nil {
			mut(s)
		}
		return s
	}
	meta := func(ann, labels map[string]string) *metav1.ObjectMeta {
		return &metav1.ObjectMeta{Annotations: ann, Labels: labels}
	}
	on := map[string]string{inject.AnnotationInject: inject.Enabled}
	for _, tc := range []struct {
		name string
		t    inject.Target
		want string // "" means injected
	}{
		{"pod enabled", inject.Target{Meta: meta(on, nil), Spec: spec(nil)}, ""},
		{"namespace enabled", inject.Target{Meta: meta(nil, nil), Spec: spec(nil), Enabled: true}, ""},
		{"nothing enabled", inject.Target{Meta: meta(nil, nil), Spec: spec(nil)}, inject.ReasonNotEnabled},
		{"pod disabled wins", inject.Target{Meta: meta(map[string]string{inject.AnnotationInject: inject.Disabled}, nil), Spec: spec(nil), Enabled: true}, inject.ReasonDisabled},
		{"host network", inject.Target{Meta: meta(on, nil), Spec: spec(func(s *corev1.PodSpec) { s.HostNetwork = true })}, inject.ReasonHostNetwork},
		{"control plane", inject.Target{Meta: meta(on, map[string]string{inject.LabelPartOf: inject.PartOfValue}), Spec: spec(nil)}, inject.ReasonControlPlane},
		{"marker", inject.Target{Meta: meta(map[string]string{inject.AnnotationInject: inject.Enabled, inject.AnnotationInjected: "true"}, nil), Spec: spec(nil)}, inject.ReasonAlreadyInjected},
		{"proxy container without marker", inject.Target{Meta: meta(on, nil), Spec: spec(func(s *corev1.PodSpec) {
			s.InitContainers = []corev1.Container{{Name: inject.ProxyContainerName}}
		})}, inject.ReasonAlreadyInjected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := inject.Decide(tc.t)
			if d.Inject != (tc.want == "") || d.Reason != tc.want {
				t.Errorf("Decide = %+v, want reason %q", d, tc.want)
			}
		})
	}
}

// TestBadAnnotations: a bad override is an error naming the annotation,
// and the pod is not patched.
func TestBadAnnotations(t *testing.T) {
	t.Parallel()
	in := newInjector(t)
	for key, val := range map[string]string{
		inject.AnnotationUpstreamPort:  "70000",
		inject.AnnotationHooksPort:     "-1",
		inject.AnnotationSkipPorts:     "9000-8000",
		inject.AnnotationRedirect:      "ebpf",
		inject.AnnotationSidecarMode:   "sometimes",
		inject.AnnotationLogLevel:      "loud",
		inject.AnnotationMCP:           "yes",
		inject.AnnotationCPURequest:    "fast",
		inject.AnnotationMemoryRequest: "1Gi", // above the 128Mi default limit
	} {
		t.Run(key, func(t *testing.T) {
			ops, _, err := in.Patch(inject.Target{
				Meta: &metav1.ObjectMeta{Annotations: map[string]string{inject.AnnotationInject: inject.Enabled, key: val}},
				Spec: &corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}},
			})
			if err == nil || ops != nil {
				t.Fatalf("ops %v err %v, want an error", ops, err)
			}
			if !strings.Contains(err.Error(), key) && !strings.Contains(err.Error(), "exceeds its limit") {
				t.Errorf("error %q does not name %s", err, key)
			}
		})
	}
	// The same error from the manifest rewrite names the document.
	src := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations: {omninode.io/inject: enabled, omninode.io/upstream-port: http}\nspec:\n  containers: [{name: a, image: a}]\n"
	var out bytes.Buffer
	_, err := in.Manifests(strings.NewReader(src), &out, inject.ManifestOptions{})
	if err == nil || !strings.Contains(err.Error(), "document 2") || !strings.Contains(err.Error(), inject.AnnotationUpstreamPort) {
		t.Errorf("err = %v, want one naming document 2 and the annotation", err)
	}
	if _, err := in.Manifests(strings.NewReader("a: [\n"), &out, inject.ManifestOptions{}); err == nil {
		t.Error("bad YAML: no error")
	}
}

// TestManifestResults reports each workload's fate.
func TestManifestResults(t *testing.T) {
	t.Parallel()
	in := newInjector(t)
	src := `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: web}]}
---
apiVersion: v1
kind: Pod
metadata: {name: cp, labels: {app.kubernetes.io/part-of: omnibridge}}
spec: {containers: [{name: cp, image: cp}]}
`
	for _, tc := range []struct {
		enable bool
		want   []inject.ManifestResult
	}{
		{false, []inject.ManifestResult{{Kind: "Deployment", Name: "web", Reason: inject.ReasonNotEnabled}, {Kind: "Pod", Name: "cp", Reason: inject.ReasonNotEnabled}}},
		{true, []inject.ManifestResult{{Kind: "Deployment", Name: "web", Injected: true}, {Kind: "Pod", Name: "cp", Reason: inject.ReasonControlPlane}}},
	} {
		var out bytes.Buffer
		res, err := in.Manifests(strings.NewReader(src), &out, inject.ManifestOptions{Enable: tc.enable})
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != len(tc.want) {
			t.Fatalf("enable=%v: results %+v, want %+v", tc.enable, res, tc.want)
		}
		for i := range res {
			if res[i] != tc.want[i] {
				t.Errorf("enable=%v: result %d = %+v, want %+v", tc.enable, i, res[i], tc.want[i])
			}
		}
		if !tc.enable && out.String() != src {
			t.Errorf("nothing injected, but the output differs from the input:\n%s", out.String())
		}
	}
}

func TestApplyPatch(t *testing.T) {
	t.Parallel()
	doc := map[string]any{"a": []any{1.0, 2.0}, "m": map[string]any{}}
	got, err := inject.ApplyPatch(doc, []inject.Op{
		{Op: "add", Path: "/a/0", Value: 0},
		{Op: "add", Path: "/a/-", Value: 3},
		{Op: "add", Path: "/m/x~1y", Value: "z"},
		{Op: "replace", Path: "/a/1", Value: 1.5},
	})
	if err != nil {
		t.Fatal(err)
	}
	m := got.(map[string]any)
	if a := m["a"].([]any); len(a) != 4 || a[0] != 0.0 || a[1] != 1.5 || a[3] != 3.0 || m["m"].(map[string]any)["x/y"] != "z" {
		t.Errorf("got %v", got)
	}
	for _, bad := range []inject.Op{
		{Op: "add", Path: "/nope/x", Value: 1},
		{Op: "add", Path: "/a/9", Value: 1},
		{Op: "replace", Path: "/m/absent", Value: 1},
		{Op: "remove", Path: "/a/0"},
		{Op: "add", Path: "a", Value: 1},
	} {
		if _, err := inject.ApplyPatch(map[string]any{"a": []any{}, "m": map[string]any{}}, []inject.Op{bad}); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}
