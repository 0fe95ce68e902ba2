package inject

// Annotations and labels read or written by the injector. Values of the
// enablement annotation (and the namespace label of the same key) are
// "enabled" or "disabled".
const (
	// AnnotationInject enables ("enabled") or disables ("disabled") injection.
	// On a pod (template) it wins over the namespace; on a namespace (label or
	// annotation) it enables every pod that does not say "disabled".
	AnnotationInject = "omninode.io/inject"
	// AnnotationInjected is the status marker the injector sets on the pods
	// it injected; a pod carrying it is never injected again.
	AnnotationInjected = "omninode.io/injected"
	// AnnotationService overrides the service name. Default: the label
	// app.kubernetes.io/name, then app, then the owning workload's name.
	AnnotationService = "omninode.io/service"
	// AnnotationUpstreamPort is the application port the sidecar forwards to.
	// Default: the first TCP containerPort of the first container, else 8080.
	AnnotationUpstreamPort = "omninode.io/upstream-port"
	// AnnotationHooksPort is the loopback port of the sidecar's hook receiver
	// (default 15002).
	AnnotationHooksPort = "omninode.io/hooks-port"
	// AnnotationSkipPorts lists inbound ports (comma-separated, ranges like
	// 9000-9010 allowed) that bypass the sidecar. Every declared containerPort
	// other than the upstream port is skipped anyway.
	AnnotationSkipPorts = "omninode.io/skip-ports"
	// AnnotationRedirect selects the redirect mode: "iptables" (default) or
	// "port-mapping" (no init container; clients reach the sidecar on its
	// inbound port 15006, named omni-inbound, e.g. via the Service targetPort).
	AnnotationRedirect = "omninode.io/redirect"
	// AnnotationSidecarMode is "native" (default: an init container with
	// restartPolicy Always, Kubernetes 1.29+) or "container" (a regular
	// container, for older clusters; Jobs then never complete by themselves).
	AnnotationSidecarMode = "omninode.io/sidecar-mode"
	// Resource overrides for the sidecar, as Kubernetes quantities.
	AnnotationCPURequest    = "omninode.io/proxy-cpu-request"
	AnnotationCPULimit      = "omninode.io/proxy-cpu-limit"
	AnnotationMemoryRequest = "omninode.io/proxy-memory-request"
	AnnotationMemoryLimit   = "omninode.io/proxy-memory-limit"
	// AnnotationLogLevel is the sidecar's log level (debug, info, warn, error).
	AnnotationLogLevel = "omninode.io/log-level"
	// AnnotationMCP set to "enabled" turns on MCP capture (--mcp).
	AnnotationMCP = "omninode.io/mcp"

	// LabelPartOf with value [PartOfValue] marks OmniNode Bridge's own pods,
	// which are never injected.
	LabelPartOf = "app.kubernetes.io/part-of"
	// PartOfValue is the value of [LabelPartOf] on OmniNode Bridge's pods.
	PartOfValue = "omnibridge"

	// Enabled and Disabled are the values of [AnnotationInject].
	Enabled  = "enabled"
	Disabled = "disabled"
)

// Names of what the injector adds to a pod.
const (
	ProxyContainerName = "omnibridge-proxy"
	InitContainerName  = "omnibridge-init"
	SpoolVolumeName    = "omnibridge-spool"
	XtablesVolumeName  = "omnibridge-xtables-lock"
)

// Ports of the sidecar.
const (
	InboundPort      = 15006
	AdminPort        = 15001
	DefaultHooksPort = 15002
	// DefaultUpstreamPort is used when neither the annotation nor a declared
	// containerPort names the application port.
	DefaultUpstreamPort = 8080
	// SpoolDir is where the sidecar spools events (an emptyDir).
	SpoolDir = "/var/run/omnibridge/spool"
)
