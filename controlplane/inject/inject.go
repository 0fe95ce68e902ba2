package inject

import (
	"fmt"
	"log/slog"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Injector builds the patch that adds the sidecar to a pod. It is safe for
// concurrent use.
type Injector struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
}

// New validates cfg and returns an Injector.
func New(cfg Config) (*Injector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	return &Injector{cfg: cfg, log: log, metrics: m}, nil
}

// Patch decides on a target and, when it is to be injected, returns the
// JSON patch (paths relative to the pod, or to the pod template) that adds
// the sidecar. A bad annotation value is an error; the pod is then left
// alone by the caller.
func (in *Injector) Patch(t Target) ([]Op, Decision, error) {
	d := Decide(t)
	if !d.Inject {
		return nil, d, nil
	}
	meta := t.Meta
	if meta == nil {
		meta = &metav1.ObjectMeta{}
		t.Meta = meta
	}
	s, err := in.settingsFor(t)
	if err != nil {
		return nil, d, fmt.Errorf("read pod settings: %w", err)
	}
	var ops []Op

	ann := map[string]string{AnnotationInjected: "true"}
	if t.MarkEnabled && meta.Annotations[AnnotationInject] != Enabled {
		ann[AnnotationInject] = Enabled
	}
	if len(meta.Annotations) == 0 { // absent, null or {}: add the whole map
		ops = append(ops, Op{"add", "/metadata/annotations", ann})
	} else {
		for _, k := range []string{AnnotationInject, AnnotationInjected} {
			if v, ok := ann[k]; ok {
				ops = append(ops, Op{"add", "/metadata/annotations/" + pointerEscape(k), v})
			}
		}
	}

	// The redirect must be in place before anything runs, and the native
	// sidecar must be up before the user's init containers: both go first.
	var inits []any
	if !s.portMapping {
		inits = append(inits, in.initContainer(s))
	}
	proxy := in.proxyContainer(s)
	if s.native {
		inits = append(inits, proxy)
	}
	if len(inits) > 0 {
		if len(t.Spec.InitContainers) == 0 {
			ops = append(ops, Op{"add", "/spec/initContainers", inits})
		} else {
			for i, c := range inits {
				ops = append(ops, Op{"add", "/spec/initContainers/" + strconv.Itoa(i), c})
			}
		}
	}
	if !s.native {
		ops = append(ops, Op{"add", "/spec/containers/-", proxy})
	}
	vols := volumes(s)
	if len(t.Spec.Volumes) == 0 {
		ops = append(ops, Op{"add", "/spec/volumes", vols})
	} else {
		for _, v := range vols {
			ops = append(ops, Op{"add", "/spec/volumes/-", v})
		}
	}
	return ops, d, nil
}
