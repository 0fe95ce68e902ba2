// Package directives is the control plane's end of the directive stream: it
// implements DirectiveService, keeps every service's desired snapshot
// (versioned, in the KV store so that any replica can serve any sidecar),
// fans new versions out to the connected sidecars of a service (all of them,
// or a canary share first), and tracks for every sidecar the version sent,
// acknowledged or rejected (with the reason) and when it was last seen.
//
// It is also the fast path upward: critical signals that arrive on the
// stream are handed to the optimization engine at once, de-duplicated by
// event id against the copy that arrives through the bus (SeenEvent).
//
// It does not decide what the directives are (that is controlplane/optimize)
// and does not validate them the way a sidecar does (the sidecar is the
// authority: it rejects what it cannot apply, and the rejection is shown).
package directives
