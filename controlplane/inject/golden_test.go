package inject_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/omninode/bridge/controlplane/inject"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"bufio"
	"errors"
	"io"
)

var update = flag.Bool("update", false, "rewrite testdata/out from the injector's output")

func newInjector(tb testing.TB, mutate ...func(*inject.Config)) *inject.Injector {
	tb.Helper()
	cfg := inject.DefaultConfig()
	for _, m := range mutate {
		m(&cfg)
	}
	in, err := inject.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return in
}

// TestGolden injects every testdata/in file (with --enable for names
// starting "enable-"), compares with testdata/out, checks that every
// output document decodes strictly into its Kubernetes type, and that
// injecting the output again changes nothing.
func TestGolden(t *testing.T) {
	t.Parallel()
	in := newInjector(t)
	files, err := filepath.Glob("testdata/in/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no inputs: %v", err)
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			opts := inject.ManifestOptions{Enable: strings.HasPrefix(name, "enable-")}
			var out bytes.Buffer
			if _, err := in.Manifests(bytes.NewReader(src), &out, opts); err != nil {
				t.Fatalf("inject: %v", err)
			}
			golden := filepath.Join("testdata", "out", name)
			if *update {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update)", err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("output differs from %s (go test -update rewrites it):\n%s", golden, out.String())
			}
			decodeStrict(t, out.Bytes())

			var again bytes.Buffer
			res, err := in.Manifests(bytes.NewReader(out.Bytes()), &again, opts)
			if err != nil {
				t.Fatalf("inject again: %v", err)
			}
			if !bytes.Equal(again.Bytes(), out.Bytes()) {
				t.Errorf("injecting twice changed the output:\n%s", again.String())
			}
			for _, r := range res {
				if r.Injected {
					t.Errorf("second pass injected %s %s again", r.Kind, r.Name)
				}
			}
		})
	}
}

// decodeStrict decodes every document into its typed object, failing on
// unknown fields.
func decodeStrict(t *testing.T, stream []byte) {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		var tm struct{ Kind string }
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatal(err)
		}
		var obj any
		switch tm.Kind {
		case "Deployment":
			obj = &appsv1.Deployment{}
		case "StatefulSet":
			obj = &appsv1.StatefulSet{}
		case "DaemonSet":
			obj = &appsv1.DaemonSet{}
		case "ReplicaSet":
			obj = &appsv1.ReplicaSet{}
		case "Job":
			obj = &batchv1.Job{}
		case "CronJob":
			obj = &batchv1.CronJob{}
		case "Pod":
			obj = &corev1.Pod{}
		case "Service":
			obj = &corev1.Service{}
		case "ConfigMap":
			obj = &corev1.ConfigMap{}
		case "List":
			obj = &corev1.List{}
		default:
			t.Fatalf("unexpected kind %q", tm.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			t.Errorf("%s does not decode strictly: %v", tm.Kind, err)
		}
	}
}
