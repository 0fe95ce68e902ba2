package inject

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// ManifestOptions tune [Injector.Manifests].
type ManifestOptions struct {
	// Enable injects every workload that is not explicitly disabled, and
	// writes omninode.io/inject: enabled on its pod template (like
	// `linkerd inject`). Without it only workloads annotated enabled (on the
	// pod template or on the workload itself) are injected.
	Enable bool
}

// ManifestResult reports what happened to one workload.
type ManifestResult struct {
	Kind, Name string
	Injected   bool
	// Reason is why it was left alone, when it was.
	Reason string
}

// Manifests reads a multi-document YAML (or JSON) stream and writes it back
// with the sidecar injected into the pod templates of Pods, Deployments,
// StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers, Jobs and
// CronJobs, including those inside a List. Every other document, and every
// workload left alone, is written byte for byte as read; injected
// documents are re-encoded (keys sorted, comments dropped). A document
// that does not parse, or a bad annotation value, is an error naming it.
func (in *Injector) Manifests(r io.Reader, w io.Writer, opts ManifestOptions) ([]ManifestResult, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var results []ManifestResult
	first := true
	for n := 1; ; n++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return results, fmt.Errorf("read document %d: %w", n, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		out, res, err := in.manifest(doc, opts)
		if err != nil {
			return results, fmt.Errorf("document %d: %w", n, err)
		}
		results = append(results, res...)
		if !first {
			if _, err := io.WriteString(w, "---\n"); err != nil {
				return results, fmt.Errorf("write output: %w", err)
			}
		}
		first = false
		if !bytes.HasSuffix(out, []byte("\n")) {
			out = append(out, '\n')
		}
		if _, err := w.Write(out); err != nil {
			return results, fmt.Errorf("write output: %w", err)
		}
	}
	return results, nil
}

// manifest injects one document, returning it unchanged when nothing was.
func (in *Injector) manifest(doc []byte, opts ManifestOptions) ([]byte, []ManifestResult, error) {
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, nil, fmt.Errorf("parse YAML: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber() // keep integers exact
	var obj any
	if err := dec.Decode(&obj); err != nil {
		return nil, nil, fmt.Errorf("parse YAML: %w", err)
	}
	m, ok := obj.(map[string]any)
	if !ok {
		return doc, nil, nil
	}
	changed, res, err := in.object(m, opts)
	if err != nil || !changed {
		return doc, res, err
	}
	out, err := yaml.Marshal(m)
	if err != nil {
		return nil, res, fmt.Errorf("encode YAML: %w", err)
	}
	return out, res, nil
}

// templatePaths maps a workload kind to the path of its pod template; the
// empty path is the object itself.
var templatePaths = map[string][]string{
	"Pod":                   nil,
	"Deployment":            {"spec", "template"},
	"StatefulSet":           {"spec", "template"},
	"DaemonSet":             {"spec", "template"},
	"ReplicaSet":            {"spec", "template"},
	"ReplicationController": {"spec", "template"},
	"Job":                   {"spec", "template"},
	"CronJob":               {"spec", "jobTemplate", "spec", "template"},
}

// object injects a decoded object in place and says whether it changed.
func (in *Injector) object(obj map[string]any, opts ManifestOptions) (bool, []ManifestResult, error) {
	kind, _ := obj["kind"].(string)
	if items, ok := obj["items"].([]any); ok && strings.HasSuffix(kind, "List") {
		changed := false
		var results []ManifestResult
		for i, it := range items {
			m, ok := it.(map[string]any)
			if !ok {
				continue
			}
			c, res, err := in.object(m, opts)
			results = append(results, res...)
			if err != nil {
				return false, results, fmt.Errorf("item %d: %w", i, err)
			}
			changed = changed || c
		}
		return changed, results, nil
	}
	path, ok := templatePaths[kind]
	if !ok {
		return false, nil, nil
	}
	meta, _ := obj["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	res := ManifestResult{Kind: kind, Name: name}
	tmpl := obj
	for _, p := range path {
		if tmpl, ok = tmpl[p].(map[string]any); !ok {
			res.Reason = "no pod template"
			return false, []ManifestResult{res}, nil
		}
	}
	var pt corev1.PodTemplateSpec
	raw, err := json.Marshal(tmpl)
	if err == nil {
		err = json.Unmarshal(raw, &pt)
	}
	if err != nil {
		return false, []ManifestResult{res}, fmt.Errorf("%s %q: decode pod template: %w", kind, name, err)
	}
	ann, _ := meta["annotations"].(map[string]any)
	t := Target{
		Meta:        &pt.ObjectMeta,
		Spec:        &pt.Spec,
		Owner:       name,
		Enabled:     opts.Enable || (len(path) > 0 && ann[AnnotationInject] == Enabled),
		MarkEnabled: opts.Enable,
	}
	ops, d, err := in.Patch(t)
	if err != nil {
		return false, []ManifestResult{res}, fmt.Errorf("%s %q: %w", kind, name, err)
	}
	if !d.Inject {
		res.Reason = d.Reason
		return false, []ManifestResult{res}, nil
	}
	if _, ok := tmpl["metadata"].(map[string]any); !ok {
		tmpl["metadata"] = map[string]any{}
	}
	if _, err := ApplyPatch(tmpl, ops); err != nil {
		return false, []ManifestResult{res}, fmt.Errorf("%s %q: %w", kind, name, err)
	}
	res.Injected = true
	return true, []ManifestResult{res}, nil
}
