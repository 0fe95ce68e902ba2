package check

import (
	"context"
	"sync"
)

// The names of the checks, in the order they are reported.
const (
	NameBus        = "bus"
	NameTopics     = "bus topics"
	NamePostgres   = "postgresql"
	NameMigrations = "postgresql migrations"
	NameRedis      = "redis"
	NameConsul     = "consul"
	NameSidecars   = "sidecar sync"
)

// Run runs every check, the independent ones concurrently, each bounded by
// cfg.Timeout, and returns their results in a fixed order. The error is
// for a bad Config only; failed checks are in the Report.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if err := cfg.Validate(); err != nil {
		return Report{}, err
	}
	groups := []func(context.Context, Config) []Result{
		checkBus,      // bus, bus topics
		checkPostgres, // postgresql, postgresql migrations
		checkRedis,
		checkConsul,
		checkSidecars,
	}
	out := make([][]Result, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		wg.Go(func() { out[i] = g(ctx, cfg) })
	}
	wg.Wait()
	var r Report
	for _, res := range out {
		r.Results = append(r.Results, res...)
	}
	return r, nil
}

func pass(name, detail string) Result { return Result{Name: name, Status: Pass, Detail: detail} }
func skip(name, note string) Result   { return Result{Name: name, Status: Skip, Detail: note} }
func fail(name, detail, hint string) Result {
	return Result{Name: name, Status: Fail, Detail: detail, Hint: hint}
}
