// Package optimize is the closed loop's brain: from route statistics it
// proposes recommendations (timeouts, retries with budgets, circuit
// breakers, rate and concurrency limits, response caching, traffic weights,
// event sampling), each with its evidence, confidence and expected impact,
// bounded by guardrails (bounds, a maximum step per change, a cool-down).
// Depending on the mode in force for the service and kind (recommend,
// dry_run, enforce) it waits for a person or publishes the directive
// through the directive server. After enforcement it measures the route
// before and after, records an effectiveness score, and rolls back, with the
// reason, a directive that made things worse. Every action is audited.
//
// It reads statistics through StatsReader and publishes through Publisher;
// it does not compute statistics nor talk to sidecars itself.
package optimize
