package demo

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
)

// Step is one change of the faults at a time after the schedule starts.
type Step struct {
	// At is the time after the start.
	At time.Duration
	// Name says what changes, for the terminal and logs.
	Name string
	// Set changes the knobs.
	Set func(*Faults)
}

// Schedule turns faults on and off over time.
type Schedule struct {
	// Steps, in any order; they run by At.
	Steps []Step
	// OnStep, when set, is called after each step is applied.
	OnStep func(Step)
}

// DefaultSchedule is the compressed story of `omnibridge dev --demo`: a quiet
// baseline, then payments turns flaky, inventory ships a slow release, the
// orders v2 canary goes bad and the MCP inventory.check tool starts failing;
// later the flaky and slow faults clear. Total about 3 minutes; the loop's
// answers are visible within 2.
func DefaultSchedule() Schedule {
	return Schedule{Steps: []Step{
		{At: 15 * time.Second, Name: "payments turns flaky (30% 503)", Set: func(f *Faults) { f.SetPaymentsFlaky(0.3) }},
		{At: 25 * time.Second, Name: "inventory slow release (+250ms)", Set: func(f *Faults) { f.SetInventorySlow(250 * time.Millisecond) }},
		{At: 35 * time.Second, Name: "orders v2 canary goes bad (50% 500)", Set: func(f *Faults) { f.SetCanaryErrors(0.5) }},
		{At: 45 * time.Second, Name: "MCP inventory.check starts failing (25%)", Set: func(f *Faults) { f.SetToolFailing(0.25) }},
		{At: 150 * time.Second, Name: "payments recovers", Set: func(f *Faults) { f.SetPaymentsFlaky(0) }},
		{At: 165 * time.Second, Name: "inventory slow release rolled back", Set: func(f *Faults) { f.SetInventorySlow(0) }},
		{At: 180 * time.Second, Name: "inventory.check recovers", Set: func(f *Faults) { f.SetToolFailing(0) }},
	}}
}

// Scaled returns the schedule with every time multiplied by f (0.1 runs it ten
// times faster, for tests).
func (s Schedule) Scaled(f float64) Schedule {
	out := Schedule{OnStep: s.OnStep, Steps: make([]Step, len(s.Steps))}
	for i, st := range s.Steps {
		st.At = time.Duration(float64(st.At) * f)
		out.Steps[i] = st
	}
	return out
}

// Validate reports a step without Set or with a negative time.
func (s Schedule) Validate() error {
	for i, st := range s.Steps {
		if st.Set == nil {
			return fmt.Errorf("step %d (%s): set is required", i, st.Name)
		}
		if st.At < 0 {
			return fmt.Errorf("step %d (%s): at %s must be at least 0", i, st.Name, st.At)
		}
	}
	return nil
}

// Run applies the steps to f at their times. It returns nil when every step
// ran or ctx ended.
func (s Schedule) Run(ctx context.Context, f *Faults) error {
	if err := s.Validate(); err != nil {
		return fmt.Errorf("validate schedule: %w", err)
	}
	steps := append([]Step(nil), s.Steps...)
	// Stable, so steps at equal times keep their order.
	slices.SortStableFunc(steps, func(a, b Step) int { return cmp.Compare(a.At, b.At) })
	start := time.Now()
	for _, st := range steps {
		if err := sleep(ctx, st.At-time.Since(start)); err != nil {
			return nil
		}
		st.Set(f)
		if s.OnStep != nil {
			s.OnStep(st)
		}
	}
	return nil
}
