package inject

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// settings are the per-pod values: the Config's defaults overridden by the
// pod's annotations.
type settings struct {
	service      string
	upstreamPort int
	hooksPort    int
	skipPorts    []string // iptables --dport values: "9090" or "9000:9010"
	portMapping  bool     // AnnotationRedirect == "port-mapping"
	native       bool     // AnnotationSidecarMode != "container"
	resources    corev1.ResourceRequirements
	logLevel     string
	mcp          bool
	versionLabel string // the label key the version comes from
}

// settingsFor resolves a target's settings. An annotation with a bad value
// is an error naming it.
func (in *Injector) settingsFor(t Target) (settings, error) {
	ann := t.Meta.Annotations
	s := settings{
		service:   serviceName(t),
		hooksPort: DefaultHooksPort,
		native:    true,
		logLevel:  in.cfg.LogLevel,
	}
	var err error
	if s.upstreamPort, err = portAnnotation(ann, AnnotationUpstreamPort, firstPort(t.Spec)); err != nil {
		return s, err
	}
	if s.hooksPort, err = portAnnotation(ann, AnnotationHooksPort, DefaultHooksPort); err != nil {
		return s, err
	}
	if s.upstreamPort == InboundPort || s.upstreamPort == AdminPort || s.upstreamPort == s.hooksPort {
		return s, fmt.Errorf("annotation %s: port %d is one of the sidecar's own ports", AnnotationUpstreamPort, s.upstreamPort)
	}
	if s.skipPorts, err = skipPorts(ann[AnnotationSkipPorts], t.Spec, s.upstreamPort); err != nil {
		return s, err
	}
	switch v := ann[AnnotationRedirect]; v {
	case "", "iptables":
	case "port-mapping":
		s.portMapping = true
	default:
		return s, fmt.Errorf("annotation %s: %q is not iptables or port-mapping", AnnotationRedirect, v)
	}
	switch v := ann[AnnotationSidecarMode]; v {
	case "", "native":
	case "container":
		s.native = false
	default:
		return s, fmt.Errorf("annotation %s: %q is not native or container", AnnotationSidecarMode, v)
	}
	if v, ok := ann[AnnotationLogLevel]; ok {
		if !logLevels[v] {
			return s, fmt.Errorf("annotation %s: %q is not debug, info, warn or error", AnnotationLogLevel, v)
		}
		s.logLevel = v
	}
	switch v := ann[AnnotationMCP]; v {
	case "", Disabled:
	case Enabled:
		s.mcp = true
	default:
		return s, fmt.Errorf("annotation %s: %q is not enabled or disabled", AnnotationMCP, v)
	}
	if s.resources, err = in.resources(ann); err != nil {
		return s, err
	}
	s.versionLabel = "app.kubernetes.io/version"
	if _, ok := t.Meta.Labels[s.versionLabel]; !ok {
		if _, ok := t.Meta.Labels["version"]; ok {
			s.versionLabel = "version"
		}
	}
	return s, nil
}

// serviceName: the annotation, the app labels, then the owner.
func serviceName(t Target) string {
	for _, v := range []string{
		t.Meta.Annotations[AnnotationService],
		t.Meta.Labels["app.kubernetes.io/name"],
		t.Meta.Labels["app"],
		t.Owner,
		t.Meta.Name,
		strings.TrimSuffix(t.Meta.GenerateName, "-"),
	} {
		if v != "" {
			return v
		}
	}
	return "unknown"
}

// firstPort is the first TCP containerPort of the first container that
// declares one, else DefaultUpstreamPort.
func firstPort(spec *corev1.PodSpec) int {
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			if p.Protocol == "" || p.Protocol == corev1.ProtocolTCP {
				return int(p.ContainerPort)
			}
		}
	}
	return DefaultUpstreamPort
}

func portAnnotation(ann map[string]string, key string, def int) (int, error) {
	v, ok := ann[key]
	if !ok {
		return def, nil
	}
	p, err := parsePort(v)
	if err != nil {
		return 0, fmt.Errorf("annotation %s: %w", key, err)
	}
	return p, nil
}

func parsePort(v string) (int, error) {
	p, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("%q is not a port (1 to 65535)", v)
	}
	return p, nil
}

// skipPorts merges the annotation's ports and ranges with every declared
// TCP containerPort other than the upstream port, sorted and deduplicated.
func skipPorts(v string, spec *corev1.PodSpec, upstream int) ([]string, error) {
	var out []string
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(f, "-")
		a, err := parsePort(lo)
		if err != nil {
			return nil, fmt.Errorf("annotation %s: %w", AnnotationSkipPorts, err)
		}
		if !isRange {
			out = append(out, strconv.Itoa(a))
			continue
		}
		b, err := parsePort(hi)
		if err != nil || b < a {
			return nil, fmt.Errorf("annotation %s: %q is not a port range low-high", AnnotationSkipPorts, f)
		}
		out = append(out, fmt.Sprintf("%d:%d", a, b))
	}
	for _, list := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for _, c := range list {
			for _, p := range c.Ports {
				if (p.Protocol == "" || p.Protocol == corev1.ProtocolTCP) && int(p.ContainerPort) != upstream {
					out = append(out, strconv.Itoa(int(p.ContainerPort)))
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b string) int { return portKey(a) - portKey(b) })
	return slices.Compact(out), nil
}

// portKey orders "9090" and "9000:9010" by their first port.
func portKey(s string) int {
	lo, _, _ := strings.Cut(s, ":")
	n, _ := strconv.Atoi(lo)
	return n
}

// resources builds the sidecar's requirements from the defaults and the
// annotations.
func (in *Injector) resources(ann map[string]string) (corev1.ResourceRequirements, error) {
	var r corev1.ResourceRequirements
	for _, f := range []struct {
		key, def string
		list     *corev1.ResourceList
		name     corev1.ResourceName
	}{
		{AnnotationCPURequest, in.cfg.CPURequest, &r.Requests, corev1.ResourceCPU},
		{AnnotationMemoryRequest, in.cfg.MemoryRequest, &r.Requests, corev1.ResourceMemory},
		{AnnotationCPULimit, in.cfg.CPULimit, &r.Limits, corev1.ResourceCPU},
		{AnnotationMemoryLimit, in.cfg.MemoryLimit, &r.Limits, corev1.ResourceMemory},
	} {
		v, ok := ann[f.key]
		if !ok {
			v = f.def
		}
		if v == "" {
			continue
		}
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return r, fmt.Errorf("annotation %s: %q is not a quantity", f.key, v)
		}
		if *f.list == nil {
			*f.list = corev1.ResourceList{}
		}
		(*f.list)[f.name] = q
	}
	for name, lim := range r.Limits {
		if req, ok := r.Requests[name]; ok && req.Cmp(lim) > 0 {
			return r, fmt.Errorf("proxy %s request %s exceeds its limit %s", name, req.String(), lim.String())
		}
	}
	return r, nil
}
