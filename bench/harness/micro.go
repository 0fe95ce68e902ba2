package harness

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// MicroResult is one benchmark's median over -count runs.
type MicroResult struct {
	Name        string  `json:"name"`
	Pkg         string  `json:"pkg"`
	NsPerOp     Spread  `json:"ns_per_op"`
	BytesPerOp  float64 `json:"bytes_per_op"`
	AllocsPerOp float64 `json:"allocs_per_op"`
}

// MicroResults holds the parsed benchmarks and the raw benchstat input.
type MicroResults struct {
	File    string        `json:"file"`
	Results []MicroResult `json:"results"`
	Err     string        `json:"error,omitempty"`
}

// runMicro runs `go test -run=^$ -bench=. -benchmem` over cfg.MicroPkgs and
// saves the output as micro.txt (benchstat input).
func runMicro(ctx context.Context, cfg Config) *MicroResults {
	res := &MicroResults{File: "micro.txt"}
	args := append(append([]string{"test"}, cfg.BuildFlags...), "-run=^$", "-bench=.", "-benchmem",
		"-benchtime="+cfg.MicroBenchtime, "-count="+strconv.Itoa(cfg.MicroCount))
	args = append(args, cfg.MicroPkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = cfg.Repo
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err := cmd.Run()
	if werr := os.WriteFile(filepath.Join(cfg.OutDir, res.File), out.Bytes(), 0o644); werr != nil {
		res.Err = werr.Error()
	}
	if err != nil {
		// A package that fails to build or whose benchmark fails is reported,
		// the others' results are kept.
		res.Err = fmt.Sprintf("go test -bench: %v: %s", err, firstLines(stderr.String()+out.String(), 8))
	}
	res.Results = parseBench(out.String())
	return res
}

// parseBench reads `go test -bench` output into per-benchmark medians.
func parseBench(s string) []MicroResult {
	type acc struct {
		pkg    string
		ns     []float64
		b, all float64
	}
	byName := map[string]*acc{}
	var order []string
	pkg := ""
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = p
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		key := pkg + " " + f[0]
		a := byName[key]
		if a == nil {
			a = &acc{pkg: pkg}
			byName[key] = a
			order = append(order, key)
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				a.ns = append(a.ns, v)
			case "B/op":
				a.b = v
			case "allocs/op":
				a.all = v
			}
		}
	}
	var out []MicroResult
	for _, k := range order {
		a := byName[k]
		name := strings.TrimPrefix(k, a.pkg+" ")
		out = append(out, MicroResult{Name: name, Pkg: a.pkg, NsPerOp: spreadOf(a.ns), BytesPerOp: a.b, AllocsPerOp: a.all})
	}
	return out
}
