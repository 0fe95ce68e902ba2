package demo_test

import (
	"context"
	"os"
	"time"

	"github.com/omninode/bridge/internal/demo"
)

// Example shows how `omnibridge dev --demo` composes the demo: a sidecar in
// front of each service (here none), traffic, the fault schedule and the
// terminal summary.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	top := demo.Topology{
		// Front: func(service string, ups []demo.Upstream) (demo.FrontEnd, error) {
		//	start a sidecar with Upstream ups[0].URL (and the others as extra
		//	endpoints for traffic weights); return its proxy and hooks URLs.
		// },
	}
	d, err := top.Start(ctx)
	if err != nil {
		panic(err)
	}
	stats := &demo.TrafficStats{}
	go func() { _ = demo.Traffic{Target: d.Entry, Rate: 20, Stats: stats}.Run(ctx) }()
	sum := demo.NewSummary(os.Stdout)
	start := time.Now()
	sched := demo.DefaultSchedule()
	sched.OnStep = func(st demo.Step) { _ = sum.Note(time.Since(start), st.Name) }
	go func() { _ = sched.Run(ctx, d.Faults) }()
	for ctx.Err() == nil {
		_ = sum.Render(demo.Snapshot{
			Elapsed: time.Since(start), Requests: stats.Sent.Load(), Failures: stats.Failed.Load(),
			ActiveFaults: d.Faults.State().Active(),
			// Events, Patterns, Recommendations, ...: from the control plane's API.
		})
		time.Sleep(time.Second)
	}
	_ = d.Wait()
	os.Stdout.WriteString(demo.Report(demo.Snapshot{Elapsed: time.Since(start)}))
}
