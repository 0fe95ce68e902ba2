// Package testenv starts real servers for tests: a PostgreSQL 15 server
// (initdb and pg_ctl on a temporary directory), redis-server children, an
// in-process kfake Kafka cluster over TCP and a Consul dev agent. Every server
// listens on 127.0.0.1 only, on ports chosen free at start, and is torn down
// when the test (per-caller servers) or the test binary (shared servers) ends.
//
// PostgreSQL and Consul are started once per test binary, lazily on first use,
// and shared by all tests in it; each PostgreSQL caller still gets its own fresh
// database. Redis and Kafka start one server per caller, stopped by tb.Cleanup.
//
// Packages that use PostgreSQL or Consul must run their tests through [Main]:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// Go has no hook that runs when a test binary ends, so Main is what stops the
// shared servers and removes their directories. Backstops exist for binaries
// that forget it or die abruptly: children started directly (redis-server,
// consul) get SIGKILL when the test process dies (Pdeathsig), and PostgreSQL,
// which pg_ctl detaches into its own session, is watched by a small shell
// process that stops it once the test process's end of a pipe closes.
//
// When a server's binary is not installed the test is skipped with a hint on
// how to install it; with CI=true in the environment it fails instead.
//
// This package is for tests only: it must not be imported by production code,
// must never bind anything but loopback, and must not share a per-caller
// server (Redis, Kafka) between callers.
package testenv
