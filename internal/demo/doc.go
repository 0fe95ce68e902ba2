// Package demo owns the demo mesh that `omnibridge dev --demo` runs: a
// storefront calling orders (a stable v1 and a canary v2), orders calling
// inventory and payments, and an MCP server ("catalog") exposing a few tools;
// a traffic generator with a realistic mix of sessions; runtime fault knobs
// and a compressed schedule that turns them on and off; and the terminal
// summary of what the loop is doing.
//
// Every service calls its dependencies through the base URL it is given (the
// dependency's sidecar when one is inserted), forwards traceparent,
// X-Correlation-Id and X-Session-Id, and may report execution hooks to its own
// sidecar. The package must not import the sidecar or the control plane: the
// caller inserts sidecars through Topology.Front.
package demo
