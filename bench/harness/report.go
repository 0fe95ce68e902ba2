package harness

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Machine describes where a run happened.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go_version"`
	LoadAvg   string `json:"loadavg_at_start"`
	// Nice is the harness's scheduling priority (children inherit it).
	Nice int `json:"nice"`
}

// PipeSummary summarises the pipeline rounds.
type PipeSummary struct {
	ProduceEPS   Spread `json:"produce_eps"`
	BusEPS       Spread `json:"bus_eps"`
	StoreRowsPS  Spread `json:"store_rows_ps"`
	StoreRows1PS Spread `json:"store_rows_1_writer_ps"`
	StoredEPS    Spread `json:"stored_eps"`
	AnalyzedEPS  Spread `json:"analyzed_eps"`
}

// Report is everything one run measured; results.json is this struct.
type Report struct {
	Started      time.Time        `json:"started"`
	Finished     time.Time        `json:"finished"`
	Commit       string           `json:"commit"`
	Machine      Machine          `json:"machine"`
	Smoke        bool             `json:"smoke"`
	Rounds       int              `json:"rounds"`
	Duration     string           `json:"duration_per_run"`
	Proxy        *ProxyResults    `json:"proxy,omitempty"`
	ProxySummary []ProxySummary   `json:"proxy_summary,omitempty"`
	Saturation   []SatSummary     `json:"saturation_summary,omitempty"`
	Pipeline     *PipelineResults `json:"pipeline,omitempty"`
	PipeSummary  *PipeSummary     `json:"pipeline_summary,omitempty"`
	Loop         *LoopResults     `json:"loop,omitempty"`
	Micro        *MicroResults    `json:"micro,omitempty"`
	Errors       []string         `json:"errors,omitempty"`
	Files        []string         `json:"files"`
	// OutDir is where the files are.
	OutDir string `json:"out_dir"`
}

func describeMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "model name"); ok {
				m.CPUModel = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if f, ok := statFields(os.Getpid()); ok && len(f) > 16 {
		m.Nice, _ = strconv.Atoi(f[16])
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return m
}

func gitCommit(repo string) string {
	out, err := exec.Command("git", "-C", repo, "rev-parse", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", repo, "status", "--porcelain").Output(); err == nil && len(st) > 0 {
		c += " (with uncommitted changes)"
	}
	return c
}

// table is rendered both as aligned text (stdout) and as Markdown.
type table struct {
	title string
	head  []string
	rows  [][]string
	notes []string
}

func (t table) text(w io.Writer) {
	width := make([]int, len(t.head))
	for i, h := range t.head {
		width[i] = len([]rune(h))
	}
	for _, r := range t.rows {
		for i, c := range r {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	fmt.Fprintf(w, "\n== %s ==\n", t.title)
	line := func(cells []string) {
		for i, c := range cells {
			fmt.Fprintf(w, "%-*s  ", width[i], c)
		}
		fmt.Fprintln(w)
	}
	line(t.head)
	for _, r := range t.rows {
		line(r)
	}
	for _, n := range t.notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}

func (t table) markdown(w io.Writer) {
	fmt.Fprintf(w, "\n### %s\n\n| %s |\n|%s\n", t.title, strings.Join(t.head, " | "), strings.Repeat(" --- |", len(t.head)))
	for _, r := range t.rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
	}
	for _, n := range t.notes {
		fmt.Fprintf(w, "\n- %s", n)
	}
	if len(t.notes) > 0 {
		fmt.Fprintln(w)
	}
}

// fmtSpread renders "median (min–max)" with a scale and precision.
func fmtSpread(s Spread, scale float64, prec int) string {
	if !s.Valid() {
		return "—"
	}
	if s.N == 1 || s.Min == s.Max {
		return fmt.Sprintf("%.*f", prec, s.Median*scale)
	}
	return fmt.Sprintf("%.*f (%.*f–%.*f)", prec, s.Median*scale, prec, s.Min*scale, prec, s.Max*scale)
}

func fmtRatio(r float64) string {
	if r == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", r)
}

func (r *Report) tables() []table {
	var ts []table
	if r.Proxy != nil {
		t := table{
			title: "Proxy overhead (added latency over direct in the same round; medians over rounds, min–max in brackets)",
			head: []string{"cell", "target", "rounds", "p50 ms", "p99 ms", "+p50 µs", "+p99 µs", "+p99.9 µs",
				"p99 ×best", "err %", "CPU ms/1k req", "CPU ×best", "RSS MB", "RSS ×best"},
			notes: []string{"pinning: " + r.Proxy.Pinning,
				"×best: ratio of the median to the best proxy (direct excluded) in the same cell; CPU is the proxy process tree's utime+stime (the upstream's for direct)",
				"rounds: used/run; a round is dropped when the load generator fell behind (>1% of sends >1 ms late) for the target or for direct"},
		}
		for _, s := range r.ProxySummary {
			errs := fmtSpread(s.ErrRate, 100, 2)
			if s.FirstErr != "" && s.ErrRate.Median > 0 {
				errs += " [" + truncate(s.FirstErr, 60) + "]"
			}
			t.rows = append(t.rows, []string{
				fmt.Sprintf("%s %s @%d/s", s.Proto, sizeName(s.Body), s.Rate), s.Target, fmt.Sprintf("%d/%d", s.Used, s.Rounds),
				fmtSpread(s.P50ms, 1, 3), fmtSpread(s.P99ms, 1, 3),
				fmtSpread(s.AddP50ms, 1000, 0), fmtSpread(s.AddP99ms, 1000, 0), fmtSpread(s.AddP999ms, 1000, 0),
				fmtRatio(s.AddP99Ratio), errs, fmtSpread(s.CPUPer1k, 1000, 1), fmtRatio(s.CPURatio),
				fmtSpread(s.RSSMB, 1, 1), fmtRatio(s.RSSRatio),
			})
		}
		for name, why := range r.Proxy.Skipped {
			t.notes = append(t.notes, "skipped "+name+": "+why)
		}
		if r.Proxy.ProfNote != "" {
			t.notes = append(t.notes, "profile: "+r.Proxy.ProfNote)
		}
		ts = append(ts, t)
		st := table{title: "Maximum sustainable rate (HTTP/1.1, p99 under the bound, <1% errors)",
			head: []string{"target", "max req/s", "×best", "peak RSS MB (VmHWM)", "stopped at (last round)"}}
		for _, s := range r.Saturation {
			st.rows = append(st.rows, []string{s.Target, fmtSpread(s.MaxRate, 1, 0), fmtRatio(s.Ratio), fmt.Sprintf("%.1f", s.PeakMB), s.Stop})
		}
		ts = append(ts, st)
	}
	if r.Pipeline != nil {
		t := table{title: "Event pipeline (" + r.Pipeline.Broker + ")", head: []string{"measure", "value (median, min–max)"}}
		ps := r.PipeSummary
		t.rows = append(t.rows,
			[]string{"produce (bus.Encode + franz-go, acks=all), events/s", fmtSpread(ps.ProduceEPS, 1, 0)},
			[]string{"producers -> broker -> plain consumer + bus.Decode, events/s", fmtSpread(ps.BusEPS, 1, 0)},
			[]string{fmt.Sprintf("store.WriteEvents (COPY) alone, rows/s, %d concurrent writers x %d-event batches (mixed types)", storeWriters, storeBatch), fmtSpread(ps.StoreRowsPS, 1, 0)},
			[]string{fmt.Sprintf("store.WriteEvents (COPY) alone, rows/s, 1 writer x %d-event batches", storeBatch), fmtSpread(ps.StoreRows1PS, 1, 0)},
			[]string{"producers -> broker -> ingest -> PostgreSQL, events/s", fmtSpread(ps.StoredEPS, 1, 0)},
			[]string{"producers -> broker -> ingest -> PostgreSQL -> analyzer, events/s", fmtSpread(ps.AnalyzedEPS, 1, 0)})
		if l := r.Pipeline.Latency; l != nil {
			t.rows = append(t.rows,
				[]string{fmt.Sprintf("emitted -> stored p50 / p99 ms at %d events/s (achieved %.0f)", l.Rate, l.AchievedEPS), fmt.Sprintf("%.2f / %.2f", l.StoredP50ms, l.StoredP99ms)},
				[]string{fmt.Sprintf("emitted -> analyzed p50 / p99 ms at %d events/s", l.Rate), fmt.Sprintf("%.2f / %.2f", l.AnalyzedP50ms, l.AnalyzedP99ms)})
		}
		if r.Pipeline.StoreErr != "" {
			t.notes = append(t.notes, "store not measured: "+r.Pipeline.StoreErr)
		}
		for k, v := range r.Pipeline.Pending {
			t.notes = append(t.notes, "pending: "+k+": "+v)
		}
		ts = append(ts, t)
	}
	if r.Loop != nil {
		l := r.Loop
		load := "idle"
		if l.UnderLoad {
			load = "while the pipeline's routine load runs"
		}
		t := table{title: fmt.Sprintf("Closed loop (controlplane/directives.FanOutBench, %d simulated sidecars on h2c streams, %d rounds, %s)", l.Sidecars, l.Rounds, load),
			head: []string{"measure", "median (min–max) ms", "p99 ms"}}
		t.rows = append(t.rows,
			[]string{"critical signal -> directive applied at the sidecar", fmtSpread(l.Critical, 1, 2), fmt.Sprintf("%.2f", l.CriticalP99ms)},
			[]string{fmt.Sprintf("directive fan-out to %d stream clients, until all acked", l.Sidecars), fmtSpread(l.FanOut, 1, 2), fmt.Sprintf("%.2f", l.FanOutP99ms)},
			[]string{"connect all and first acknowledgement", fmt.Sprintf("%.0f", l.ConnectMs), ""})
		if l.Err != "" {
			t.notes = append(t.notes, "error: "+l.Err)
		}
		ts = append(ts, t)
	}
	if r.Micro != nil {
		t := table{title: "Micro-benchmarks (go test -bench, median ns/op over -count runs; raw output in " + r.Micro.File + " for benchstat)",
			head: []string{"package", "benchmark", "ns/op", "B/op", "allocs/op"}}
		for _, m := range r.Micro.Results {
			t.rows = append(t.rows, []string{strings.TrimPrefix(m.Pkg, "github.com/omninode/bridge/"), m.Name, fmtSpread(m.NsPerOp, 1, 0),
				fmt.Sprintf("%.0f", m.BytesPerOp), fmt.Sprintf("%.0f", m.AllocsPerOp)})
		}
		if r.Micro.Err != "" {
			t.notes = append(t.notes, r.Micro.Err)
		}
		ts = append(ts, t)
	}
	return ts
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// write prints the table and writes results.json and report.md (with charts).
func (r *Report) write(cfg Config) error {
	for _, t := range r.tables() {
		t.text(cfg.Stdout)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(cfg.Stdout, "ERROR: %s\n", e)
	}
	charts, cerr := writeCharts(r, cfg.OutDir)
	if cerr != nil {
		r.Errors = append(r.Errors, "charts: "+cerr.Error())
	}
	r.Files = append(r.Files, "results.json", "report.md")
	r.Files = append(r.Files, charts...)
	if r.Micro != nil {
		r.Files = append(r.Files, r.Micro.File)
	}
	if r.Proxy != nil {
		r.Files = append(r.Files, r.Proxy.Profiles...)
	}
	if r.Pipeline != nil {
		r.Files = append(r.Files, r.Pipeline.Profiles...)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(cfg.OutDir, "results.json"), b, 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	var md strings.Builder
	r.markdown(&md, charts)
	if err := os.WriteFile(filepath.Join(cfg.OutDir, "report.md"), []byte(md.String()), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	fmt.Fprintf(cfg.Stdout, "\nresults: %s\n", cfg.OutDir)
	return nil
}

func (r *Report) markdown(w io.Writer, charts []string) {
	kind := "Full run"
	if r.Smoke {
		kind = "Smoke run (tiny scale: checks the harness, the figures mean nothing)"
	}
	fmt.Fprintf(w, "# Benchmark report\n\n%s, %s to %s UTC.\n\n", kind, r.Started.UTC().Format("2006-01-02 15:04"), r.Finished.UTC().Format("15:04"))
	fmt.Fprintf(w, "- Commit: `%s`\n- Machine: %d CPUs, %s, kernel %s, %s; load average at start %s (shared machine: other work was running); harness nice %d\n- %d rounds, %s per measured run\n",
		r.Commit, r.Machine.CPUs, r.Machine.CPUModel, r.Machine.Kernel, r.Machine.GoVersion, r.Machine.LoadAvg, r.Machine.Nice, r.Rounds, r.Duration)
	for _, t := range r.tables() {
		t.markdown(w)
	}
	if len(charts) > 0 {
		fmt.Fprintln(w, "\n### Charts")
		for _, c := range charts {
			fmt.Fprintf(w, "\n![%s](%s)\n", strings.TrimSuffix(c, ".png"), c)
		}
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "\n**Error:** %s\n", e)
	}
}
