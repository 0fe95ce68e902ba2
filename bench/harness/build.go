package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// binaries are the helper programs the harness builds into its temp dir.
type binaries struct {
	upstream string
	// omnibridge is empty when it does not build; omniErr says why.
	omnibridge string
	omniErr    string
	// sidecarErr is non-empty when omnibridge lacks a usable sidecar subcommand.
	sidecarErr string
	// sidecarHelp is `omnibridge sidecar --help`, to see which flags exist.
	sidecarHelp string
	// pprofOmni is omnibridge built with an overlay file that serves
	// net/http/pprof on $OMNIBRIDGE_BENCH_PPROF (PROFILE=1 only, when the
	// sidecar has no --pprof flag of its own); empty otherwise.
	pprofOmni string
}

// pprofOverlay is compiled into package main of cmd/omnibridge for profiling
// runs only, through go build -overlay: the tree is not touched.
const pprofOverlay = `package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	if addr := os.Getenv("OMNIBRIDGE_BENCH_PPROF"); addr != "" {
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
}
`

// buildPprofOmnibridge builds the profiling variant of omnibridge.
func buildPprofOmnibridge(ctx context.Context, repo, dir string, flags []string) (string, error) {
	src := filepath.Join(dir, "zz_bench_pprof.go")
	if err := os.WriteFile(src, []byte(pprofOverlay), 0o644); err != nil {
		return "", err
	}
	abs, err := filepath.Abs(filepath.Join(repo, "cmd", "omnibridge", "zz_bench_pprof.go"))
	if err != nil {
		return "", err
	}
	ov, _ := json.Marshal(map[string]map[string]string{"Replace": {abs: src}})
	ovPath := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(ovPath, ov, 0o644); err != nil {
		return "", err
	}
	out := filepath.Join(dir, "omnibridge-pprof")
	if err := goBuild(ctx, repo, out, "./cmd/omnibridge", append([]string{"-overlay=" + ovPath}, flags...)); err != nil {
		return "", err
	}
	return out, nil
}

func goBuild(ctx context.Context, repo, out, pkg string, flags []string) error {
	args := append(append([]string{"build"}, flags...), "-o", out, pkg)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = repo
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, strings.TrimSpace(string(b)))
	}
	return nil
}

// buildBinaries builds the upstream (required) and omnibridge (optional: the
// sidecar and broker targets are skipped with the reason when it fails).
func buildBinaries(ctx context.Context, repo, dir string, flags []string) (binaries, error) {
	var b binaries
	b.upstream = filepath.Join(dir, "benchupstream")
	if err := goBuild(ctx, repo, b.upstream, "./bench/cmd/benchupstream", flags); err != nil {
		return b, err
	}
	omni := filepath.Join(dir, "omnibridge")
	if err := goBuild(ctx, repo, omni, "./cmd/omnibridge", flags); err != nil {
		b.omniErr = firstLines(err.Error(), 6)
		b.sidecarErr = "omnibridge does not build: " + b.omniErr
		return b, nil
	}
	b.omnibridge = omni
	out, err := exec.CommandContext(ctx, omni, "sidecar", "--help").CombinedOutput()
	b.sidecarHelp = string(out)
	switch {
	case err != nil:
		b.sidecarErr = "omnibridge has no sidecar subcommand yet: " + firstLines(string(out), 3)
	case !strings.Contains(b.sidecarHelp, "--upstream"):
		b.sidecarErr = "omnibridge sidecar has no --upstream flag"
	}
	return b, nil
}

// flagKind reports whether the sidecar's help lists --name: "" when it
// does not, "bool" for a switch, else the value type cobra prints ("string").
func (b binaries) flagKind(name string) string {
	for _, line := range strings.Split(b.sidecarHelp, "\n") {
		f := strings.Fields(line)
		for i, w := range f {
			if w == "--"+name {
				if i+1 < len(f) && !strings.HasPrefix(f[i+1], "--") && (f[i+1] == "string" || f[i+1] == "int" || f[i+1] == "duration") {
					return f[i+1]
				}
				return "bool"
			}
		}
	}
	return ""
}

func firstLines(s string, n int) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	if len(ls) > n {
		ls = append(ls[:n], "...")
	}
	return strings.Join(ls, " | ")
}
