package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/omninode/bridge/controlplane/inject"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
)

func init() {
	register(newInjectCmd)
	register(newSidecarPrestopCmd)
}

func newInjectCmd() *cobra.Command {
	cfg := inject.DefaultConfig()
	var (
		files      []string
		enable     bool
		pullPolicy string
	)
	cmd := &cobra.Command{
		Use:   "inject -f FILE|-",
		Short: "Add the OmniNode Bridge sidecar to Kubernetes manifests",
		Long: `Read Kubernetes manifests (multi-document YAML or JSON; Pods, Deployments,
StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs and Lists of them) and
write them to standard output with the sidecar injected, exactly as the
control plane's admission webhook would. Workloads are injected when their
pod template or the workload itself is annotated omninode.io/inject: enabled,
or all of them with --enable (which also writes that annotation, so the
webhook agrees). Pods that opt out, use the host network, belong to
OmniNode Bridge or are already injected are left alone; so is every other
document. Injecting twice changes nothing. A summary goes to standard error.

  omnibridge inject -f deploy.yaml | kubectl apply -f -
  kubectl get deploy -o yaml | omnibridge inject --enable -f - | kubectl apply -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return errors.New("inject: -f FILE or -f - (standard input) is required")
			}
			cfg.ImagePullPolicy = corev1.PullPolicy(pullPolicy)
			in, err := inject.New(cfg)
			if err != nil {
				return err
			}
			out := bufio.NewWriter(cmd.OutOrStdout())
			for i, f := range files {
				if i > 0 {
					if _, err := io.WriteString(out, "---\n"); err != nil {
						return err
					}
				}
				if err := injectFile(cmd, in, f, out, inject.ManifestOptions{Enable: enable}); err != nil {
					return err
				}
			}
			return out.Flush()
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&files, "filename", "f", nil, "manifest file to inject, - for standard input (repeatable)")
	fl.BoolVar(&enable, "enable", false, "inject every workload not explicitly disabled, and annotate it omninode.io/inject: enabled")
	fl.StringVar(&cfg.Image, "image", cfg.Image, "sidecar image")
	fl.StringVar(&cfg.InitImage, "init-image", cfg.InitImage, "iptables init container image")
	fl.StringVar(&pullPolicy, "image-pull-policy", "", "image pull policy of the injected containers (Always, IfNotPresent, Never; empty: cluster default)")
	fl.StringVar(&cfg.Brokers, "brokers", cfg.Brokers, "bus bootstrap brokers given to the sidecars, comma-separated")
	fl.StringVar(&cfg.ControlPlane, "control-plane", cfg.ControlPlane, "control plane URL given to the sidecars")
	fl.StringVar(&cfg.EnvConfigMap, "env-configmap", cfg.EnvConfigMap, "optional ConfigMap (in the pod's namespace) with OMNIBRIDGE_* settings for the sidecar; empty for none")
	fl.StringVar(&cfg.LogLevel, "proxy-log-level", cfg.LogLevel, "sidecar log level (debug, info, warn, error)")
	fl.DurationVar(&cfg.PreStopDelay, "prestop-delay", cfg.PreStopDelay, "delay of the sidecar's preStop hook before SIGTERM")
	return cmd
}

func injectFile(cmd *cobra.Command, in *inject.Injector, name string, out io.Writer, opts inject.ManifestOptions) error {
	var r io.Reader = cmd.InOrStdin()
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("inject: %w", err)
		}
		defer f.Close()
		r = f
	}
	results, err := in.Manifests(r, out, opts)
	for _, res := range results {
		what := strings.ToLower(res.Kind) + "/" + res.Name
		if res.Injected {
			fmt.Fprintf(cmd.ErrOrStderr(), "%s injected\n", what)
		} else {
			fmt.Fprintf(cmd.ErrOrStderr(), "%s skipped: %s\n", what, res.Reason)
		}
	}
	if err != nil {
		return fmt.Errorf("inject %s: %w", name, err)
	}
	return nil
}

// newSidecarPrestopCmd is the sidecar's preStop hook: the image is
// distroless, without sleep, and the hook only has to hold SIGTERM back
// while the endpoints controller stops routing to the pod. The sidecar
// itself drains on SIGTERM.
func newSidecarPrestopCmd() *cobra.Command {
	var delay time.Duration
	cmd := &cobra.Command{
		Use:    "sidecar-prestop",
		Short:  "Wait before the sidecar is sent SIGTERM (its preStop hook)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if delay < 0 || delay > time.Minute {
				return fmt.Errorf("sidecar-prestop: --delay %v is outside 0 to 1m", delay)
			}
			t := time.NewTimer(delay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-cmd.Context().Done():
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&delay, "delay", 5*time.Second, "how long to wait")
	return cmd
}
