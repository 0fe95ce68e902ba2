package main

import (
	"bytes"
	"context"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/omninode/bridge/controlplane/analyze/analyzetest"
	"github.com/omninode/bridge/controlplane/intelapi"
	"github.com/omninode/bridge/internal/bus"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files of the query commands")

// startIntel serves the fixture's intelligence over real HTTP.
func startIntel(t *testing.T) (*intelapi.Server, string) {
	t.Helper()
	cfg := intelapi.DefaultConfig()
	cfg.Analyzer = analyzetest.New(t)
	srv, err := intelapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	intelapi.Mount(mux, srv)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return srv, hs.URL
}

func runCLI(ctx context.Context, args ...string) (string, error) {
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *updateGolden {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run go test -run %s -update to create it): %v", t.Name(), err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run with -update after checking):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestQueryCommandsGolden(t *testing.T) {
	_, url := startIntel(t)
	cases := []struct {
		name string
		args []string
	}{
		{"top", []string{"top", "--window", "1h"}},
		{"top_pay_json", []string{"top", "--window", "1h", "--service", "pay", "-o", "json"}},
		{"services", []string{"services"}},
		{"services_json", []string{"services", "-o", "json"}},
		{"graph", []string{"graph", "--window", "1h"}},
		{"graph_dot", []string{"graph", "--window", "1h", "--format", "dot"}},
		{"graph_mermaid", []string{"graph", "--window", "1h", "--format", "mermaid"}},
		{"patterns", []string{"patterns"}},
		{"patterns_json", []string{"patterns", "--service", "pay", "-o", "json"}},
		{"tools", []string{"tools"}},
		{"tools_json", []string{"tools", "--service", "pay", "-o", "json"}},
		{"trace", []string{"trace", analyzetest.FailedTrace}},
		{"trace_json", []string{"trace", analyzetest.FailedTrace, "-o", "json"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runCLI(t.Context(), append(tc.args, "--server", url)...)
			if err != nil {
				t.Fatalf("%v: %v\n%s", tc.args, err, out)
			}
			golden(t, tc.name, out)
		})
	}
}

func TestQueryServerFromEnvironmentAndErrors(t *testing.T) {
	_, url := startIntel(t)
	t.Setenv("OMNIBRIDGE_SERVER", url)
	out, err := runCLI(t.Context(), "services")
	if err != nil {
		t.Fatalf("services with OMNIBRIDGE_SERVER: %v\n%s", err, out)
	}
	if _, err := runCLI(t.Context(), "trace", "0123"); err == nil || !bytes.Contains([]byte(err.Error()), []byte("not_found")) {
		t.Fatalf("unknown trace: %v", err)
	}
	if _, err := runCLI(t.Context(), "top", "-o", "yaml"); err == nil {
		t.Fatal("bad -o accepted")
	}
	if _, err := runCLI(t.Context(), "graph", "--format", "png"); err == nil {
		t.Fatal("bad --format accepted")
	}
}

func TestTapGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		n    int
	}{
		{"tap_pay_errors", []string{"--service", "pay", "--errors-only", "--count", "6"}, 6},
		{"tap_tools_json", []string{"--topic", bus.TopicTools, "-o", "json", "--count", "4"}, 4},
		{"tap_route_prefix", []string{"--route-prefix", "/che", "--count", "3"}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, url := startIntel(t)
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			type result struct {
				out string
				err error
			}
			done := make(chan result, 1)
			go func() {
				out, err := runCLI(ctx, append([]string{"tap", "--server", url}, tc.args...)...)
				done <- result{out, err}
			}()
			for srv.Subscribers() == 0 {
				select {
				case r := <-done:
					t.Fatalf("tap ended early: %v\n%s", r.err, r.out)
				case <-time.After(2 * time.Millisecond):
				}
			}
			for _, ev := range analyzetest.Events() {
				srv.Observe(ev, false)
			}
			r := <-done
			if r.err != nil {
				t.Fatalf("tap: %v\n%s", r.err, r.out)
			}
			golden(t, tc.name, r.out)
		})
	}
}
