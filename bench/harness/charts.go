package harness

import (
	"fmt"
	"image/color"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// writeCharts draws grouped bar charts (one group per cell, one bar per
// target) of p99 latency, CPU per 1,000 requests and the saturation rate.
func writeCharts(r *Report, dir string) ([]string, error) {
	if len(r.ProxySummary) == 0 {
		return nil, nil
	}
	var cells []string
	var targets []string
	for _, s := range r.ProxySummary {
		c := fmt.Sprintf("%s %s @%d", s.Proto, sizeName(s.Body), s.Rate)
		if !slices.Contains(cells, c) {
			cells = append(cells, c)
		}
		if !slices.Contains(targets, s.Target) {
			targets = append(targets, s.Target)
		}
	}
	value := func(pick func(ProxySummary) Spread) map[string]plotter.Values {
		out := map[string]plotter.Values{}
		for _, t := range targets {
			vs := make(plotter.Values, len(cells))
			for _, s := range r.ProxySummary {
				if s.Target == t {
					c := fmt.Sprintf("%s %s @%d", s.Proto, sizeName(s.Body), s.Rate)
					if v := pick(s); v.Valid() {
						vs[slices.Index(cells, c)] = v.Median
					}
				}
			}
			out[t] = vs
		}
		return out
	}
	var files []string
	for _, ch := range []struct {
		file, title, y string
		vals           map[string]plotter.Values
	}{
		{"p99.png", "p99 latency (median over rounds)", "ms", value(func(s ProxySummary) Spread { return s.P99ms })},
		{"p50.png", "p50 latency (median over rounds)", "ms", value(func(s ProxySummary) Spread { return s.P50ms })},
		{"cpu.png", "CPU per 1,000 requests (proxy tree; upstream for direct)", "CPU ms", value(func(s ProxySummary) Spread {
			x := s.CPUPer1k
			x.Median *= 1000
			return x
		})},
	} {
		if err := groupedBars(filepath.Join(dir, ch.file), ch.title, ch.y, cells, targets, ch.vals); err != nil {
			return files, err
		}
		files = append(files, ch.file)
	}
	if len(r.Saturation) > 0 {
		var names []string
		vals := map[string]plotter.Values{}
		for _, s := range r.Saturation {
			names = append(names, s.Target)
			vals[s.Target] = plotter.Values{s.MaxRate.Median}
		}
		if err := groupedBars(filepath.Join(dir, "saturation.png"), "max sustainable rate (HTTP/1.1)", "req/s", []string{"h1"}, names, vals); err != nil {
			return files, err
		}
		files = append(files, "saturation.png")
	}
	return files, nil
}

func groupedBars(path, title, ylabel string, groups, series []string, vals map[string]plotter.Values) error {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = ylabel
	w := vg.Points(60 / float64(max(1, len(series))))
	for i, s := range series {
		b, err := plotter.NewBarChart(vals[s], w)
		if err != nil {
			return fmt.Errorf("bar chart %s: %w", s, err)
		}
		b.LineStyle.Width = 0
		b.Color = plotutil.Color(i)
		if b.Color == nil {
			b.Color = color.Gray{Y: 128}
		}
		b.Offset = vg.Length(float64(i)-float64(len(series)-1)/2) * w
		p.Add(b)
		p.Legend.Add(s, b)
	}
	p.Legend.Top = true
	p.NominalX(groups...)
	width := vg.Length(max(6, 2*len(groups))) * vg.Inch
	if err := p.Save(width, 4*vg.Inch, path); err != nil {
		return fmt.Errorf("save %s: %w", filepath.Base(path), err)
	}
	return nil
}
