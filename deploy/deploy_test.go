package deploy_test

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/omninode/bridge/internal/bus"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// Issuer and Certificate mirror the fields of cert-manager.io/v1 that the
// manifests use (cert-manager's Go types are not a dependency), so that a
// misspelt field still fails the strict decode.
type issuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SelfSigned *struct{} `json:"selfSigned,omitempty"`
	} `json:"spec"`
}

type certificate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SecretName  string   `json:"secretName"`
		Duration    string   `json:"duration,omitempty"`
		RenewBefore string   `json:"renewBefore,omitempty"`
		DNSNames    []string `json:"dnsNames"`
		PrivateKey  *struct {
			Algorithm      string `json:"algorithm,omitempty"`
			Size           int    `json:"size,omitempty"`
			RotationPolicy string `json:"rotationPolicy,omitempty"`
		} `json:"privateKey,omitempty"`
		IssuerRef struct {
			Name  string `json:"name"`
			Kind  string `json:"kind,omitempty"`
			Group string `json:"group,omitempty"`
		} `json:"issuerRef"`
	} `json:"spec"`
}

// typed returns an empty typed object for an apiVersion and kind.
func typed(apiVersion, kind string) any {
	switch apiVersion + " " + kind {
	case "v1 Namespace":
		return &corev1.Namespace{}
	case "v1 Service":
		return &corev1.Service{}
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}
	case "v1 Secret":
		return &corev1.Secret{}
	case "v1 ServiceAccount":
		return &corev1.ServiceAccount{}
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}
	case "apps/v1 StatefulSet":
		return &appsv1.StatefulSet{}
	case "batch/v1 Job":
		return &batchv1.Job{}
	case "rbac.authorization.k8s.io/v1 ClusterRole":
		return &rbacv1.ClusterRole{}
	case "rbac.authorization.k8s.io/v1 ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}
	case "rbac.authorization.k8s.io/v1 Role":
		return &rbacv1.Role{}
	case "rbac.authorization.k8s.io/v1 RoleBinding":
		return &rbacv1.RoleBinding{}
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "networking.k8s.io/v1 NetworkPolicy":
		return &networkingv1.NetworkPolicy{}
	case "admissionregistration.k8s.io/v1 MutatingWebhookConfiguration":
		return &admissionregistrationv1.MutatingWebhookConfiguration{}
	case "cert-manager.io/v1 Issuer":
		return &issuer{}
	case "cert-manager.io/v1 Certificate":
		return &certificate{}
	}
	return nil
}

// rendered is one kustomization's output, decoded.
type rendered map[string]any // "Kind/name" -> typed object

// render builds a kustomization with the kustomize library and decodes
// every object strictly.
func render(t *testing.T, dir string) rendered {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out := rendered{}
	for _, r := range m.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		key := r.GetKind() + "/" + r.GetName()
		obj := typed(r.GetApiVersion(), r.GetKind())
		if obj == nil {
			t.Errorf("%s: %s %s has no typed object in this test", dir, r.GetApiVersion(), key)
			continue
		}
		if err := yaml.UnmarshalStrict(y, obj); err != nil {
			t.Errorf("%s: %s does not decode strictly: %v", dir, key, err)
			continue
		}
		if _, dup := out[key]; dup {
			t.Errorf("%s: %s twice", dir, key)
		}
		out[key] = obj
	}
	return out
}

// kustomizations lists every directory with a kustomization.yaml, and
// whether it is a Component (built only through an overlay).
func kustomizations(t *testing.T) map[string]bool {
	t.Helper()
	dirs := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.Name() != "kustomization.yaml" {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var k struct{ Kind string }
		if err := yaml.Unmarshal(b, &k); err != nil {
			return err
		}
		dirs[filepath.Dir(path)] = k.Kind == "Component"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

// TestRenderAll renders every kustomization (components through the
// overlays that use them), decodes every object strictly, and checks that
// every manifest and component under deploy/ is used by some
// kustomization.
func TestRenderAll(t *testing.T) {
	dirs := kustomizations(t)
	if len(dirs) < 6 {
		t.Fatalf("found only %v", dirs)
	}
	referenced := map[string]bool{}
	for dir, component := range dirs {
		var k struct {
			Resources  []string `json:"resources"`
			Components []string `json:"components"`
			Patches    []struct {
				Path string `json:"path"`
			} `json:"patches"`
		}
		b, _ := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
		if err := yaml.Unmarshal(b, &k); err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		for _, p := range slices.Concat(k.Resources, k.Components) {
			referenced[filepath.Join(dir, p)] = true
		}
		for _, p := range k.Patches {
			if p.Path != "" {
				referenced[filepath.Join(dir, p.Path)] = true
			}
		}
		if component {
			continue
		}
		t.Run(dir, func(t *testing.T) {
			// Not parallel: kustomize keeps global OpenAPI state that races under concurrent renders.
			if objs := render(t, dir); len(objs) == 0 {
				t.Errorf("%s renders nothing", dir)
			}
		})
	}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.IsDir() && dirs[path] && path != "." && !referenced[path] && !strings.HasPrefix(path, "overlays") && !strings.HasPrefix(path, "examples"):
			t.Errorf("%s is used by no kustomization", path)
		case !d.IsDir() && strings.HasSuffix(path, ".yaml") && d.Name() != "kustomization.yaml" && !referenced[path]:
			t.Errorf("%s is not listed in any kustomization", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func get[T any](t *testing.T, objs rendered, key string) T {
	t.Helper()
	o, ok := objs[key].(T)
	if !ok {
		t.Fatalf("no %s in the render", key)
	}
	return o
}

// byPrefix finds the one object whose key starts with prefix (generated
// ConfigMaps and Secrets carry a hash suffix).
func byPrefix[T any](t *testing.T, objs rendered, prefix string) T {
	t.Helper()
	for k, o := range objs {
		if strings.HasPrefix(k, prefix) {
			if v, ok := o.(T); ok {
				return v
			}
		}
	}
	t.Fatalf("no %s* in the render", prefix)
	var zero T
	return zero
}

// TestSelfContained checks that the self-contained install hangs together.
func TestSelfContained(t *testing.T) {
	objs := render(t, "overlays/self-contained")
	cp := get[*appsv1.Deployment](t, objs, "Deployment/omnibridge-controlplane")
	if cp.Spec.Replicas == nil || *cp.Spec.Replicas < 2 {
		t.Errorf("control plane replicas %v, want several", cp.Spec.Replicas)
	}
	if cp.Namespace != "omnibridge" || cp.Spec.Template.Labels["app.kubernetes.io/part-of"] != "omnibridge" {
		t.Errorf("control plane pods must be in omnibridge and labelled part-of=omnibridge (never injected)")
	}
	pdb := get[*policyv1.PodDisruptionBudget](t, objs, "PodDisruptionBudget/omnibridge-controlplane")
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(cp.Spec.Template.Labels)) {
		t.Errorf("the PodDisruptionBudget does not select the control plane pods")
	}

	// Every ConfigMap and Secret the control plane reads exists.
	c := cp.Spec.Template.Spec.Containers[0]
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			get[*corev1.ConfigMap](t, objs, "ConfigMap/"+ef.ConfigMapRef.Name)
		case ef.SecretRef != nil:
			get[*corev1.Secret](t, objs, "Secret/"+ef.SecretRef.Name)
		}
	}
	store := byPrefix[*corev1.Secret](t, objs, "Secret/omnibridge-store")
	for _, k := range []string{"OMNIBRIDGE_POSTGRES", "OMNIBRIDGE_REDIS"} {
		if len(store.Data[k]) == 0 {
			t.Errorf("Secret omnibridge-store lacks %s", k)
		}
	}
	if a := strings.Join(c.Args, " "); strings.Contains(a, "POSTGRES") || strings.Contains(a, "REDIS") {
		t.Errorf("store credentials on the command line: %s", a)
	}

	// The webhook reaches the control plane's Service, with a certificate
	// from cert-manager that the control plane mounts.
	wh := get[*admissionregistrationv1.MutatingWebhookConfiguration](t, objs, "MutatingWebhookConfiguration/omnibridge-injector")
	w := wh.Webhooks[0]
	svc := get[*corev1.Service](t, objs, "Service/"+w.ClientConfig.Service.Name)
	if w.ClientConfig.Service.Namespace != svc.Namespace || !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == *w.ClientConfig.Service.Port }) {
		t.Errorf("the webhook's service %+v does not match Service %s", w.ClientConfig.Service, svc.Name)
	}
	if w.FailurePolicy == nil || *w.FailurePolicy != admissionregistrationv1.Ignore || w.NamespaceSelector.MatchLabels["omninode.io/inject"] != "enabled" {
		t.Errorf("webhook: want failurePolicy Ignore and a namespaceSelector on omninode.io/inject=enabled")
	}
	cert := get[*certificate](t, objs, "Certificate/omnibridge-webhook")
	if got := wh.Annotations["cert-manager.io/inject-ca-from"]; got != cert.Namespace+"/"+cert.Name {
		t.Errorf("inject-ca-from %q, want %s/%s", got, cert.Namespace, cert.Name)
	}
	if !slices.Contains(cert.Spec.DNSNames, svc.Name+"."+svc.Namespace+".svc") {
		t.Errorf("certificate names %v lack the Service", cert.Spec.DNSNames)
	}
	if !slices.ContainsFunc(cp.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool {
		return v.Secret != nil && v.Secret.SecretName == cert.Spec.SecretName
	}) {
		t.Errorf("the control plane does not mount Secret %s", cert.Spec.SecretName)
	}
	get[*issuer](t, objs, "Issuer/"+cert.Spec.IssuerRef.Name)

	// The backing services, and the Job that creates every bus topic.
	get[*appsv1.StatefulSet](t, objs, "StatefulSet/omnibridge-redpanda")
	get[*appsv1.StatefulSet](t, objs, "StatefulSet/omnibridge-postgresql")
	get[*appsv1.Deployment](t, objs, "Deployment/omnibridge-redis")
	consul := get[*appsv1.StatefulSet](t, objs, "StatefulSet/omnibridge-consul")
	if img := consul.Spec.Template.Spec.Containers[0].Image; img != "hashicorp/consul:1.14.11" {
		t.Errorf("consul image %s, want hashicorp/consul:1.14.11 (MPL)", img)
	}
	job := get[*batchv1.Job](t, objs, "Job/omnibridge-topics")
	script := strings.Join(job.Spec.Template.Spec.Containers[0].Command, " ")
	for _, topic := range bus.AllTopics {
		if !strings.Contains(script, topic) {
			t.Errorf("the topics Job does not create %s", topic)
		}
	}
	get[*networkingv1.NetworkPolicy](t, objs, "NetworkPolicy/omnibridge-controlplane")
	get[*networkingv1.NetworkPolicy](t, objs, "NetworkPolicy/omnibridge-stores")
}

// TestManaged: no backing services, the endpoints merged into the config,
// and the credentials Secret left to the operator.
func TestManaged(t *testing.T) {
	objs := render(t, "overlays/managed")
	cfg := byPrefix[*corev1.ConfigMap](t, objs, "ConfigMap/omnibridge-config")
	if !strings.Contains(cfg.Data["OMNIBRIDGE_BROKERS"], "example.com") || cfg.Data["OMNIBRIDGE_WEBHOOK_LISTEN"] == "" {
		t.Errorf("config %v: want the managed brokers merged over the base", cfg.Data)
	}
	for k := range objs {
		if strings.Contains(k, "redpanda") || strings.Contains(k, "postgresql") || strings.HasPrefix(k, "Secret/") {
			t.Errorf("managed install renders %s", k)
		}
	}
	cp := get[*appsv1.Deployment](t, objs, "Deployment/omnibridge-controlplane")
	b, _ := json.Marshal(cp.Spec.Template.Spec.Containers[0].EnvFrom)
	if !strings.Contains(string(b), `"name":"omnibridge-store"`) {
		t.Errorf("control plane envFrom %s does not read the omnibridge-store Secret", b)
	}
}

// TestOTelExample: the collector runs and the control plane exports to it.
func TestOTelExample(t *testing.T) {
	objs := render(t, "examples/otel-collector")
	get[*appsv1.Deployment](t, objs, "Deployment/omnibridge-otel-collector")
	svc := get[*corev1.Service](t, objs, "Service/omnibridge-otel-collector")
	cp := get[*appsv1.Deployment](t, objs, "Deployment/omnibridge-controlplane")
	var endpoint string
	for _, e := range cp.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "OTEL_EXPORTER_OTLP_ENDPOINT" {
			endpoint = e.Value
		}
	}
	if !strings.Contains(endpoint, svc.Name+"."+svc.Namespace+".svc:4317") {
		t.Errorf("control plane OTLP endpoint %q does not name the collector", endpoint)
	}
	if len(cp.Spec.Template.Spec.Containers[0].EnvFrom) != 2 {
		t.Errorf("the OTLP patch lost the control plane's envFrom")
	}
}
