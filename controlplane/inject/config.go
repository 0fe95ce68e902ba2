package inject

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Config configures an [Injector] and its webhook [Handler].
type Config struct {
	// Image is the sidecar image; its PATH must hold the omnibridge binary.
	// Default "ghcr.io/omninode/bridge:latest".
	Image string
	// InitImage is the image of the iptables init container: anything with
	// sh and iptables (deploy/images/init builds one). Default
	// "ghcr.io/omninode/bridge-init:latest".
	InitImage string
	// ImagePullPolicy of both containers; empty leaves the cluster default.
	ImagePullPolicy corev1.PullPolicy
	// Brokers is the bus bootstrap list given to every sidecar
	// (OMNIBRIDGE_BROKERS), comma-separated. Default
	// "omnibridge-redpanda.omnibridge.svc:9092".
	Brokers string
	// ControlPlane is the URL of the control plane's directive API. Default
	// "http://omnibridge-controlplane.omnibridge.svc:8080".
	ControlPlane string
	// EnvConfigMap names an optional ConfigMap in the pod's namespace whose
	// OMNIBRIDGE_* keys configure the sidecar's other flags. Empty: none.
	// Default "omnibridge-sidecar".
	EnvConfigMap string
	// ProxyUID is the user and group the sidecar runs as (never root).
	// Default 2102.
	ProxyUID int64
	// Default sidecar resources, Kubernetes quantities; empty means unset.
	// Defaults: cpu request 50m, no cpu limit, memory request 32Mi, memory
	// limit 128Mi. Pod annotations override them.
	CPURequest, CPULimit, MemoryRequest, MemoryLimit string
	// LogLevel is the sidecar's default log level. Default "info".
	LogLevel string
	// PreStopDelay is how long the sidecar's preStop hook waits before the
	// kubelet sends SIGTERM, so endpoints stop routing to the pod first
	// (0 to 60 s). Default 5s.
	PreStopDelay time.Duration
	// Timeout bounds one admission request (0 to 30 s); the API server's own
	// default is 10 s, so the default 5s leaves room for the network.
	Timeout time.Duration
	// Namespaces looks up a namespace's labels and annotations. Nil means the
	// MutatingWebhookConfiguration's namespaceSelector already sent only
	// enabled namespaces, so every namespace counts as enabled.
	Namespaces NamespaceLookup
	// Registry receives the webhook's metrics; nil registers nothing.
	Registry *prometheus.Registry
	// Logger; nil discards.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults documented on [Config].
func DefaultConfig() Config {
	return Config{
		Image:         "ghcr.io/omninode/bridge:latest",
		InitImage:     "ghcr.io/omninode/bridge-init:latest",
		Brokers:       "omnibridge-redpanda.omnibridge.svc:9092",
		ControlPlane:  "http://omnibridge-controlplane.omnibridge.svc:8080",
		EnvConfigMap:  "omnibridge-sidecar",
		ProxyUID:      2102,
		CPURequest:    "50m",
		MemoryRequest: "32Mi",
		MemoryLimit:   "128Mi",
		LogLevel:      "info",
		PreStopDelay:  5 * time.Second,
		Timeout:       5 * time.Second,
	}
}

var logLevels = map[string]bool{"debug": true, "info": true, "warn": true, "error": true}

// Validate reports the first bad field.
func (c Config) Validate() error {
	var errs []error
	if c.Image == "" {
		errs = append(errs, errors.New("Image: must not be empty"))
	}
	if c.InitImage == "" {
		errs = append(errs, errors.New("InitImage: must not be empty"))
	}
	switch c.ImagePullPolicy {
	case "", corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		errs = append(errs, fmt.Errorf("ImagePullPolicy: %q is not Always, IfNotPresent or Never", c.ImagePullPolicy))
	}
	if c.Brokers == "" {
		errs = append(errs, errors.New("Brokers: must not be empty"))
	}
	if u, err := url.Parse(c.ControlPlane); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("ControlPlane: %q is not an http(s) URL", c.ControlPlane))
	}
	if c.ProxyUID <= 0 {
		errs = append(errs, fmt.Errorf("ProxyUID: %d must be a non-root uid (> 0)", c.ProxyUID))
	}
	for _, f := range []struct{ name, q string }{
		{"CPURequest", c.CPURequest}, {"CPULimit", c.CPULimit},
		{"MemoryRequest", c.MemoryRequest}, {"MemoryLimit", c.MemoryLimit},
	} {
		if f.q == "" {
			continue
		}
		if _, err := resource.ParseQuantity(f.q); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not a quantity: %w", f.name, f.q, err))
		}
	}
	if !logLevels[c.LogLevel] {
		errs = append(errs, fmt.Errorf("LogLevel: %q is not debug, info, warn or error", c.LogLevel))
	}
	if c.PreStopDelay < 0 || c.PreStopDelay > time.Minute {
		errs = append(errs, fmt.Errorf("PreStopDelay: %v is outside 0 to 60s", c.PreStopDelay))
	}
	if c.Timeout <= 0 || c.Timeout > 30*time.Second {
		errs = append(errs, fmt.Errorf("Timeout: %v is outside (0, 30s]", c.Timeout))
	}
	if len(errs) > 0 {
		return fmt.Errorf("inject config: %w", errors.Join(errs...))
	}
	return nil
}
