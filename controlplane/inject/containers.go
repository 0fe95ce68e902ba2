package inject

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// proxyContainer is the sidecar. As a native sidecar (an init container
// with restartPolicy Always) it starts before the application, is stopped
// after it, and does not keep a Job from completing.
func (in *Injector) proxyContainer(s settings) corev1.Container {
	args := []string{
		"sidecar",
		"--service=" + s.service,
		"--listen=:" + strconv.Itoa(InboundPort),
		"--upstream=http://127.0.0.1:" + strconv.Itoa(s.upstreamPort),
		"--admin=:" + strconv.Itoa(AdminPort),
		"--hooks=127.0.0.1:" + strconv.Itoa(s.hooksPort),
		"--spool-dir=" + SpoolDir,
		"--brokers=$(OMNIBRIDGE_BROKERS)",
		"--control-plane=" + in.cfg.ControlPlane,
		"--version-label=$(OMNIBRIDGE_VERSION_LABEL)",
		"--pod=$(POD_NAME)",
		"--namespace=$(POD_NAMESPACE)",
	}
	if s.mcp {
		args = append(args, "--mcp")
	}
	field := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	probe := func(path string, period, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: path, Port: intstr.FromInt32(AdminPort),
			}},
			PeriodSeconds:    period,
			FailureThreshold: failures,
		}
	}
	c := corev1.Container{
		Name:            ProxyContainerName,
		Image:           in.cfg.Image,
		ImagePullPolicy: in.cfg.ImagePullPolicy,
		Command:         []string{"omnibridge"},
		Args:            args,
		Ports: []corev1.ContainerPort{
			{Name: "omni-inbound", ContainerPort: InboundPort, Protocol: corev1.ProtocolTCP},
			{Name: "omni-admin", ContainerPort: AdminPort, Protocol: corev1.ProtocolTCP},
		},
		Env: []corev1.EnvVar{
			field("POD_NAME", "metadata.name"),
			field("POD_NAMESPACE", "metadata.namespace"),
			field("POD_IP", "status.podIP"),
			field("OMNIBRIDGE_VERSION_LABEL", "metadata.labels['"+s.versionLabel+"']"),
			{Name: "OMNIBRIDGE_BROKERS", Value: in.cfg.Brokers},
			{Name: "OMNIBRIDGE_LOG_LEVEL", Value: s.logLevel},
		},
		Resources:      s.resources,
		StartupProbe:   probe("/livez", 1, 30),
		LivenessProbe:  probe("/livez", 10, 3),
		ReadinessProbe: probe("/readyz", 5, 3),
		Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{
			// The sidecar drains on SIGTERM; this delay first lets the
			// endpoints controller stop routing to the pod. The image is
			// distroless (no sleep binary), so the omnibridge binary waits.
			Command: []string{"omnibridge", "sidecar-prestop", "--delay=" + in.cfg.PreStopDelay.String()},
		}}},
		VolumeMounts: []corev1.VolumeMount{{Name: SpoolVolumeName, MountPath: SpoolDir}},
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                ptrTo(in.cfg.ProxyUID),
			RunAsGroup:               ptrTo(in.cfg.ProxyUID),
			RunAsNonRoot:             ptrTo(true),
			ReadOnlyRootFilesystem:   ptrTo(true),
			AllowPrivilegeEscalation: ptrTo(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
	if in.cfg.EnvConfigMap != "" {
		c.EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: in.cfg.EnvConfigMap},
			Optional:             ptrTo(true),
		}}}
	}
	if s.native {
		c.RestartPolicy = ptrTo(corev1.ContainerRestartPolicyAlways)
	}
	return c
}

// initContainer installs the inbound redirect: every inbound TCP port goes
// to the sidecar's inbound port, except the skipped ports and the sidecar's
// own. It alone runs as root, with NET_ADMIN and NET_RAW, and it is
// re-runnable (a restarted pod sandbox keeps its network namespace).
func (in *Injector) initContainer(s settings) corev1.Container {
	const chain = "OMNIBRIDGE_INBOUND"
	var b strings.Builder
	b.WriteString("set -eu\n")
	b.WriteString("redirect() {\n")
	fmt.Fprintf(&b, "  $1 -w -t nat -N %s 2>/dev/null || $1 -w -t nat -F %s\n", chain, chain)
	skip := append([]string{strconv.Itoa(InboundPort), strconv.Itoa(AdminPort), strconv.Itoa(s.hooksPort)}, s.skipPorts...)
	for _, p := range skip {
		fmt.Fprintf(&b, "  $1 -w -t nat -A %s -p tcp --dport %s -j RETURN\n", chain, p)
	}
	fmt.Fprintf(&b, "  $1 -w -t nat -A %s -p tcp -j REDIRECT --to-ports %d\n", chain, InboundPort)
	fmt.Fprintf(&b, "  $1 -w -t nat -C PREROUTING -p tcp -j %s 2>/dev/null || $1 -w -t nat -A PREROUTING -p tcp -j %s\n", chain, chain)
	b.WriteString("}\n")
	b.WriteString("redirect iptables\n")
	b.WriteString("# IPv6 too, where the pod has it.\n")
	b.WriteString("if ip6tables -w -t nat -L PREROUTING >/dev/null 2>&1; then redirect ip6tables; fi\n")
	return corev1.Container{
		Name:            InitContainerName,
		Image:           in.cfg.InitImage,
		ImagePullPolicy: in.cfg.ImagePullPolicy,
		Command:         []string{"sh", "-c", b.String()},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("10Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("50Mi")},
		},
		// iptables takes its lock in /run; the root filesystem stays read-only.
		VolumeMounts: []corev1.VolumeMount{{Name: XtablesVolumeName, MountPath: "/run"}},
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                ptrTo(int64(0)),
			RunAsNonRoot:             ptrTo(false),
			ReadOnlyRootFilesystem:   ptrTo(true),
			AllowPrivilegeEscalation: ptrTo(false),
			Privileged:               ptrTo(false),
			Capabilities: &corev1.Capabilities{
				Add:  []corev1.Capability{"NET_ADMIN", "NET_RAW"},
				Drop: []corev1.Capability{"ALL"},
			},
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
}

// volumes are the spool (kept across sidecar restarts for the pod's life)
// and, with iptables, the init container's lock directory.
func volumes(s settings) []corev1.Volume {
	v := []corev1.Volume{{Name: SpoolVolumeName, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
		SizeLimit: ptrTo(resource.MustParse("256Mi")),
	}}}}
	if !s.portMapping {
		v = append(v, corev1.Volume{Name: XtablesVolumeName, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	}
	return v
}

func ptrTo[T any](v T) *T { return &v }
