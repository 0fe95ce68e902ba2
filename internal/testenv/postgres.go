package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres is a fresh database on the PostgreSQL server shared by the test
// binary. Stop and Start act on the whole server, so tests that use them must
// not run in parallel with other PostgreSQL tests.
type Postgres struct {
	srv *pgServer
	db  string
}

var (
	pgOnce   sync.Once
	pgShared *pgServer
	pgErr    error
)

// PostgreSQL starts (once per test binary) a PostgreSQL server and returns a
// fresh, empty database created for this caller (CREATE DATABASE t_<random>),
// so tests don't share tables. The database is dropped when tb ends; the
// server lives until [Main] stops it.
//
// It skips tb (fails it with CI=true) when PostgreSQL is not installed.
func PostgreSQL(tb testing.TB) *Postgres {
	tb.Helper()
	// A failed start is remembered, so every caller reports it, not just the first.
	pgOnce.Do(func() { pgShared, pgErr = startPostgres() })
	if pgErr != nil {
		abort(tb, pgErr)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	p := &Postgres{srv: pgShared, db: "t_" + hex.EncodeToString(b[:])}

	ctx, cancel := context.WithTimeout(tb.Context(), pgTimeout)
	defer cancel()
	if err := p.srv.exec(ctx, "CREATE DATABASE "+p.db); err != nil {
		tb.Fatalf("testenv: create database %s: %v", p.db, err)
	}
	tb.Cleanup(func() {
		// Best effort: the test may have left the server stopped, and the
		// whole data directory goes away at the end of the binary anyway.
		ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
		defer cancel()
		_ = p.srv.exec(ctx, "DROP DATABASE IF EXISTS "+p.db+" WITH (FORCE)")
	})
	return p
}

// DSN returns the URL of this caller's database, e.g.
// postgres://postgres@127.0.0.1:PORT/t_xxx?sslmode=disable.
func (p *Postgres) DSN() string { return p.srv.dsn(p.db) }

// Stop stops the whole server (pg_ctl stop -m fast), for fault tests.
func (p *Postgres) Stop(tb testing.TB) {
	tb.Helper()
	if err := p.srv.stop(); err != nil {
		tb.Fatal(err)
	}
}

// Start starts the server again on the same port and data directory, and
// waits until it accepts connections. Data committed before Stop is kept.
func (p *Postgres) Start(tb testing.TB) {
	tb.Helper()
	if err := p.srv.start(); err != nil {
		tb.Fatal(err)
	}
}

// pgTimeout bounds a server start, stop or administrative statement.
const pgTimeout = 60 * time.Second

// pgServer is the PostgreSQL server shared by the test binary.
type pgServer struct {
	bin     string // directory holding initdb, pg_ctl and postgres
	runuser string // path of runuser when running as root, which initdb refuses
	dir     string // owns everything: data/, the socket, postgres.log
	port    int

	mu       sync.Mutex // serializes start, stop and close
	watchdog *exec.Cmd  // stops the server once the test process is gone
	wdPipe   *os.File   // the watchdog's stdin; it acts when this closes
}

func (s *pgServer) dataDir() string { return filepath.Join(s.dir, "data") }
func (s *pgServer) logPath() string { return filepath.Join(s.dir, "postgres.log") }

func (s *pgServer) dsn(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// postgresBin returns the directory of the PostgreSQL server binaries: 15
// first, then the newest other version installed, then initdb on PATH.
func postgresBin() (string, error) {
	dirs := []string{"/usr/lib/postgresql/15/bin"}
	others, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(others)))
	dirs = append(dirs, others...)
	if p, err := exec.LookPath("initdb"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	for _, d := range dirs {
		_, err1 := os.Stat(filepath.Join(d, "initdb"))
		_, err2 := os.Stat(filepath.Join(d, "pg_ctl"))
		if err1 == nil && err2 == nil {
			return d, nil
		}
	}
	return "", &notInstalledError{what: "PostgreSQL (initdb, pg_ctl)", hint: "apt-get install postgresql"}
}

// startPostgres creates a cluster in a new temporary directory and starts it
// on a free port. On failure it leaves nothing behind.
func startPostgres() (_ *pgServer, err error) {
	bin, err := postgresBin()
	if err != nil {
		return nil, err
	}
	s := &pgServer{bin: bin}
	var owner *user.User
	if os.Geteuid() == 0 {
		rp, ok := findBinary("runuser", "/usr/sbin/runuser", "/sbin/runuser")
		if !ok {
			return nil, errors.New("testenv: running as root, and runuser, needed to run initdb as postgres, is missing")
		}
		s.runuser = rp
		if owner, err = user.Lookup("postgres"); err != nil {
			return nil, &notInstalledError{what: "the postgres user (initdb refuses root)", hint: "apt-get install postgresql"}
		}
	}
	if s.dir, err = os.MkdirTemp(tempBase(), "testenv-pg-"); err != nil {
		return nil, fmt.Errorf("testenv: create postgres dir: %w", err)
	}
	if owner != nil {
		uid, _ := strconv.Atoi(owner.Uid)
		gid, _ := strconv.Atoi(owner.Gid)
		if err := os.Chown(s.dir, uid, gid); err != nil {
			_ = os.RemoveAll(s.dir)
			return nil, fmt.Errorf("testenv: chown postgres dir: %w", err)
		}
	}
	// The watchdog comes first so that it covers initdb and a failed start.
	if err := s.startWatchdog(); err != nil {
		_ = os.RemoveAll(s.dir)
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = s.close()
		}
	}()

	// --no-sync and the start options trade durability for speed: the
	// cluster lives only as long as the test binary.
	ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
	defer cancel()
	out, err := s.command(ctx, "initdb", "-D", s.dataDir(), "-U", "postgres",
		"--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("testenv: initdb: %w\n%s", err, out)
	}

	for attempt := 1; ; attempt++ {
		ports, err := freePorts(1)
		if err != nil {
			return nil, fmt.Errorf("testenv: postgres: %w", err)
		}
		s.port = ports[0]
		from := logSize(s.logPath())
		err = s.start()
		if err == nil {
			break
		}
		if attempt == startAttempts || !portTaken(logSince(s.logPath(), from)) {
			return nil, err
		}
	}
	addShared(s.close)
	return s, nil
}

// command runs a PostgreSQL binary, as user postgres when the test runs as root.
func (s *pgServer) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	path := filepath.Join(s.bin, name)
	var cmd *exec.Cmd
	if s.runuser != "" {
		cmd = exec.CommandContext(ctx, s.runuser, append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	// pg_ctl's postmaster writes to its own log, but should anything keep
	// the output pipe open, don't wait for it forever.
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// start starts the server with pg_ctl on s.port and waits until a client can
// connect.
func (s *pgServer) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
	defer cancel()
	from := logSize(s.logPath())
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off"+
		" -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
		s.port, shellQuote(s.dir))
	out, err := s.command(ctx, "pg_ctl", "-D", s.dataDir(), "-l", s.logPath(), "-w",
		"-t", strconv.Itoa(int(pgTimeout/time.Second)), "-o", opts, "start").CombinedOutput()
	if err != nil {
		return fmt.Errorf("testenv: start postgres on port %d: %w\n%s\n--- log ---\n%s",
			s.port, err, out, logSince(s.logPath(), from))
	}
	// pg_ctl -w waits for the socket; wait for a real session too.
	for {
		err := s.ping(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("testenv: postgres on port %d not ready: %w\n--- log ---\n%s",
				s.port, err, logSince(s.logPath(), from))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop stops the server (pg_ctl stop -m fast).
func (s *pgServer) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
	defer cancel()
	out, err := s.command(ctx, "pg_ctl", "-D", s.dataDir(), "-m", "fast", "-w", "stop").CombinedOutput()
	if err != nil {
		return fmt.Errorf("testenv: stop postgres: %w\n%s", err, out)
	}
	return nil
}

// running reports whether the server is up, per pg_ctl status.
func (s *pgServer) running() bool {
	ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
	defer cancel()
	return s.command(ctx, "pg_ctl", "-D", s.dataDir(), "status").Run() == nil
}

// close stops the server if it runs, retires the watchdog and removes the
// directory. Main calls it.
func (s *pgServer) close() error {
	var err error
	if s.running() {
		err = s.stop()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.watchdog != nil {
		// Kill the shell before closing its pipe, so it doesn't act.
		_ = s.watchdog.Process.Kill()
		_ = s.watchdog.Wait()
		_ = s.wdPipe.Close()
		s.watchdog = nil
	}
	return errors.Join(err, os.RemoveAll(s.dir))
}

// startWatchdog starts a shell, in its own session so a Ctrl-C to the test
// doesn't reach it, that blocks reading a pipe whose write end only this
// process holds. When the test process ends without Main (forgotten, crashed,
// killed on timeout), the pipe closes and the shell stops the server, if it
// runs, and removes its directory. A goroutine can't do this: it dies with
// the process. (os.Pipe sets close-on-exec, so no other child inherits the
// write end and keeps the shell waiting.)
func (s *pgServer) startWatchdog() error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("testenv: postgres watchdog: %w", err)
	}
	defer r.Close()
	stop := shellQuote(filepath.Join(s.bin, "pg_ctl")) + " -D " + shellQuote(s.dataDir()) + " -m immediate stop"
	if s.runuser != "" {
		stop = shellQuote(s.runuser) + " -u postgres -- " + stop
	}
	script := "cat >/dev/null; " + stop + " >/dev/null 2>&1; rm -rf " + shellQuote(s.dir)
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("testenv: postgres watchdog: %w", err)
	}
	s.watchdog, s.wdPipe = cmd, w
	return nil
}

// ping opens a session on the maintenance database and pings it.
func (s *pgServer) ping(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, s.dsn("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.Ping(ctx)
}

// exec runs one statement on the maintenance database.
func (s *pgServer) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.dsn("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}
