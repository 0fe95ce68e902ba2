package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgServer is a throwaway PostgreSQL cluster (initdb + pg_ctl) for the
// pipeline scenario, tuned for speed (fsync off): it measures the write path,
// not the disk.
type pgServer struct {
	bin, runuser, dir string
	port              int
}

func pgBinDir() string {
	dirs := []string{"/usr/lib/postgresql/15/bin"}
	others, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(others)))
	dirs = append(dirs, others...)
	if p, err := exec.LookPath("initdb"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
				return d
			}
		}
	}
	return ""
}

// startPostgres creates and starts a cluster under a new temp dir.
func startPostgres(ctx context.Context) (*pgServer, error) {
	s := &pgServer{bin: pgBinDir()}
	if s.bin == "" {
		return nil, errors.New("PostgreSQL not installed (Debian package: postgresql); not installing it")
	}
	var err error
	if s.dir, err = os.MkdirTemp("", "bench-pg-"); err != nil {
		return nil, fmt.Errorf("create postgres dir: %w", err)
	}
	if os.Geteuid() == 0 {
		if s.runuser, err = exec.LookPath("runuser"); err != nil {
			s.runuser = "/usr/sbin/runuser"
		}
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, errors.New("running as root and there is no postgres user for initdb (Debian package: postgresql)")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(s.dir, uid, gid); err != nil {
			return nil, fmt.Errorf("chown postgres dir: %w", err)
		}
	}
	data := filepath.Join(s.dir, "data")
	if out, err := s.command(ctx, "initdb", "-D", data, "-U", "postgres", "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync").CombinedOutput(); err != nil {
		s.close()
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	ports, err := freePorts(1)
	if err != nil {
		s.close()
		return nil, err
	}
	s.port = ports[0]
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"+
		" -c full_page_writes=off -c max_connections=100 -c shared_buffers=128MB", s.port, s.dir)
	if out, err := s.command(ctx, "pg_ctl", "-D", data, "-l", filepath.Join(s.dir, "postgres.log"), "-w",
		"-t", "60", "-o", opts, "start").CombinedOutput(); err != nil {
		s.close()
		return nil, fmt.Errorf("start postgres: %w\n%s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := pgx.Connect(ctx, s.dsn("postgres"))
		if err == nil {
			conn.Close(ctx)
			break
		}
		if time.Now().After(deadline) {
			s.close()
			return nil, fmt.Errorf("postgres not ready: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s, nil
}

func (s *pgServer) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	path := filepath.Join(s.bin, name)
	var cmd *exec.Cmd
	if s.runuser != "" {
		cmd = exec.CommandContext(ctx, s.runuser, append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

func (s *pgServer) dsn(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// createDB creates a fresh database and returns its DSN.
func (s *pgServer) createDB(ctx context.Context, name string) (string, error) {
	conn, err := pgx.Connect(ctx, s.dsn("postgres"))
	if err != nil {
		return "", fmt.Errorf("connect postgres: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return s.dsn(name), nil
}

// close stops the server and removes its directory.
func (s *pgServer) close() {
	if s == nil || s.dir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if s.port != 0 {
		_ = s.command(ctx, "pg_ctl", "-D", filepath.Join(s.dir, "data"), "-m", "immediate", "-w", "stop").Run()
	}
	_ = os.RemoveAll(s.dir)
}
