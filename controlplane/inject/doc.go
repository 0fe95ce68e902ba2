// Package inject adds the OmniNode Bridge sidecar to Kubernetes pods: the
// proxy container (as a native sidecar by default), its spool volume, its
// identity from the downward API and the inbound traffic redirect (an
// iptables init container, or explicit port mapping by annotation).
//
// It owns the decision (which pods get a sidecar, driven by the
// omninode.io/* annotations), the JSON patch that does it, the mutating
// admission webhook that serves that patch to the API server over TLS
// ([Handler], [Serve]), and the offline rewrite of multi-document YAML behind
// `omnibridge inject` ([Injector.Manifests]).
//
// It must never keep a pod from starting: every internal error fails open
// (the pod is admitted uninjected, with a warning and a metric). It does not
// talk to the Kubernetes API except through a [NamespaceLookup] the caller
// passes in, and it never touches a pod that is already injected, runs on the
// host network or belongs to OmniNode Bridge itself.
package inject
