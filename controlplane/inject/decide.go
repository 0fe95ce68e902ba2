package inject

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Target is a pod, or a workload's pod template, to inject.
type Target struct {
	// Meta and Spec are the pod's (or template's); they are only read.
	Meta *metav1.ObjectMeta
	Spec *corev1.PodSpec
	// Owner names the owning workload, the last fallback for the service
	// name (after the annotation and the app labels).
	Owner string
	// Enabled says the scope above the pod enabled injection: the
	// namespace (webhook), or the workload or --enable (offline).
	Enabled bool
	// MarkEnabled also writes omninode.io/inject: enabled on the pod, as
	// `omnibridge inject --enable` does, so the webhook keeps it injected.
	MarkEnabled bool
}

// Decision says whether a target gets a sidecar, and why not.
type Decision struct {
	Inject bool
	// Reason is why the pod is left alone, for logs and warnings; empty
	// when Inject is true.
	Reason string
}

// Reasons a pod is left alone.
const (
	ReasonDisabled        = "injection disabled by the pod annotation " + AnnotationInject
	ReasonNotEnabled      = "injection not enabled for the pod or its namespace"
	ReasonHostNetwork     = "the pod uses the host network"
	ReasonControlPlane    = "the pod belongs to OmniNode Bridge (" + LabelPartOf + "=" + PartOfValue + ")"
	ReasonAlreadyInjected = "the pod already has the sidecar"
)

// Decide applies the injection rules to a target.
func Decide(t Target) Decision {
	var ann, labels map[string]string
	if t.Meta != nil {
		ann, labels = t.Meta.Annotations, t.Meta.Labels
	}
	switch {
	case ann[AnnotationInject] == Disabled:
		return Decision{Reason: ReasonDisabled}
	case ann[AnnotationInject] != Enabled && !t.Enabled:
		return Decision{Reason: ReasonNotEnabled}
	case t.Spec == nil:
		return Decision{Reason: ReasonNotEnabled}
	case t.Spec.HostNetwork:
		return Decision{Reason: ReasonHostNetwork}
	case labels[LabelPartOf] == PartOfValue:
		return Decision{Reason: ReasonControlPlane}
	case injected(t.Meta, t.Spec):
		return Decision{Reason: ReasonAlreadyInjected}
	}
	return Decision{Inject: true}
}

// injected reports whether a pod carries the marker or one of our containers.
func injected(meta *metav1.ObjectMeta, spec *corev1.PodSpec) bool {
	if meta != nil {
		if _, ok := meta.Annotations[AnnotationInjected]; ok {
			return true
		}
	}
	for _, list := range [][]corev1.Container{spec.Containers, spec.InitContainers} {
		for _, c := range list {
			if c.Name == ProxyContainerName || c.Name == InitContainerName {
				return true
			}
		}
	}
	return false
}
