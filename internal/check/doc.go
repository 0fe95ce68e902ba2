// Package check is the pre-flight and health check behind `omnibridge
// check` (like `linkerd check`): it verifies that the bus answers and has
// the four intelligence topics and the dead-letter topic, that PostgreSQL
// answers and has its migrations applied, that Redis and Consul answer, and
// that the sidecars are in sync with the control plane. Each check reports
// pass, fail (with a hint) or skip (with a note).
//
// It only reads: it creates no topic, table or key, and it never prints a
// password (addresses are shown without credentials).
package check
