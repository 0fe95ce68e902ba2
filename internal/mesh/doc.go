// Package mesh is the composition root of the omnibridge binaries: it
// assembles the control plane (pipeline, analyzer, intelligence API,
// optimization engine, directive server, admin API, dashboard, API
// authentication and mutual TLS, the injector webhook), the sidecar (proxy,
// directive client, Consul registration, signed hooks) and the one-process
// development environment `omnibridge dev` with its demo, from the parts the
// other packages own. The cmd/omnibridge subcommands parse flags into this
// package's configs and call Run.
//
// It wires and adapts; it does not analyze, decide or proxy. Where a part's
// API does not fit another's, the adapter lives here (route statistics for
// the optimizer, the short-TTL API cache, the per-service authorization of
// the directive stream, the signature check in front of the hook receiver).
package mesh
