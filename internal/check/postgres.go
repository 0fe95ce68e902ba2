package check

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// checkPostgres connects, then reads the migration table.
func checkPostgres(ctx context.Context, cfg Config) []Result {
	if cfg.Postgres == "" {
		return []Result{skip(NamePostgres, "no --postgres given"), skip(NameMigrations, "no --postgres given")}
	}
	pc, err := pgx.ParseConfig(cfg.Postgres)
	if err != nil {
		// pgx's parse errors can quote the DSN, password included.
		return []Result{fail(NamePostgres, "the --postgres DSN does not parse",
			"use postgres://user:password@host:5432/db?sslmode=... or key=value form"), skip(NameMigrations, "PostgreSQL not reachable")}
	}
	where := net.JoinHostPort(pc.Host, strconv.Itoa(int(pc.Port))) + "/" + pc.Database
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, pc)
	if err != nil {
		return []Result{
			fail(NamePostgres, fmt.Sprintf("cannot connect to %s: %v", where, err),
				fmt.Sprintf("is PostgreSQL running and reachable at %s? Check --postgres (OMNIBRIDGE_POSTGRES): host, port, database, password and sslmode", where)),
			skip(NameMigrations, "PostgreSQL not reachable"),
		}
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var version string
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&version); err != nil {
		return []Result{fail(NamePostgres, fmt.Sprintf("query %s: %v", where, err), "the server accepted the connection but not a query; check its logs"),
			skip(NameMigrations, "PostgreSQL not answering")}
	}
	pgRes := pass(NamePostgres, fmt.Sprintf("connected to %s (PostgreSQL %s)", where, version))

	hint := "start the control plane once with this --postgres: it applies the migrations at start (omnibridge controlplane --postgres ...)"
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", cfg.MigrationsTable).Scan(&exists); err != nil {
		return []Result{pgRes, fail(NameMigrations, fmt.Sprintf("look up table %s: %v", cfg.MigrationsTable, err), hint)}
	}
	if !exists {
		return []Result{pgRes, fail(NameMigrations, fmt.Sprintf("no %s table: the schema was never migrated", cfg.MigrationsTable), hint)}
	}
	var n int
	var latest string
	q := fmt.Sprintf("SELECT count(*), coalesce(max(name), '') FROM %s", pgx.Identifier{cfg.MigrationsTable}.Sanitize())
	if err := conn.QueryRow(ctx, q).Scan(&n, &latest); err != nil {
		return []Result{pgRes, fail(NameMigrations, fmt.Sprintf("read %s: %v", cfg.MigrationsTable, err), hint)}
	}
	if n == 0 {
		return []Result{pgRes, fail(NameMigrations, fmt.Sprintf("%s is empty: no migration applied", cfg.MigrationsTable), hint)}
	}
	return []Result{pgRes, pass(NameMigrations, fmt.Sprintf("%d applied, latest %s", n, latest))}
}
