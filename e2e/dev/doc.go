// Package dev tests `omnibridge dev --demo` end to end: it builds the
// binary, runs the demo with a duration, and checks through the public API
// (IntelligenceService over Connect) and the final report that each injected
// fault was detected and answered by the right directive and that the loop
// measured the effect; and it drives the dashboard of the running demo in
// headless Chromium (apply, acknowledgement by the sidecars, rollback, tap).
package dev
