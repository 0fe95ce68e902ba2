package testenv

import (
	"bufio"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RedisServer is a redis-server child owned by one caller, without
// persistence (no RDB snapshots, no append-only file): a restart empties it.
// Its stdout log is redis.log in the caller's tb.TempDir().
type RedisServer struct {
	mu   sync.Mutex // serializes Start and Stop
	port int
	proc *child
}

// redisReadyTimeout bounds how long a start waits for PONG.
const redisReadyTimeout = 20 * time.Second

// Redis starts a redis-server for this caller (each call its own server; they
// start in milliseconds) on a free port of 127.0.0.1, stopped when tb ends.
//
// It skips tb (fails it with CI=true) when redis-server is not installed.
func Redis(tb testing.TB) *RedisServer {
	tb.Helper()
	bin, ok := findBinary("redis-server", "/usr/bin/redis-server", "/usr/sbin/redis-server")
	if !ok {
		abort(tb, &notInstalledError{what: "redis-server", hint: "apt-get install redis-server"})
	}
	dir := tb.TempDir()
	r := &RedisServer{}
	for attempt := 1; ; attempt++ {
		ports, err := freePorts(1)
		if err != nil {
			tb.Fatalf("testenv: redis: %v", err)
		}
		r.port = ports[0]
		r.proc = &child{
			name: "redis-server",
			path: bin,
			args: []string{
				"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
				"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", "",
			},
			logPath: filepath.Join(dir, "redis.log"),
		}
		err = r.start()
		if err == nil {
			break
		}
		if attempt == startAttempts || !portTaken(r.proc.log()) {
			tb.Fatal(err)
		}
	}
	tb.Cleanup(r.stop)
	return r
}

// Addr returns the server's address, "127.0.0.1:PORT".
func (r *RedisServer) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

// Stop stops the server (SIGTERM); its data is lost.
func (r *RedisServer) Stop(tb testing.TB) {
	tb.Helper()
	r.stop()
}

// Start starts the server again, empty, on the same port.
func (r *RedisServer) Start(tb testing.TB) {
	tb.Helper()
	if err := r.start(); err != nil {
		tb.Fatal(err)
	}
}

func (r *RedisServer) start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc.cmd != nil {
		return nil // already running
	}
	if err := r.proc.start(); err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	if err := r.proc.waitReady(redisReadyTimeout, r.ping); err != nil {
		r.proc.stop()
		return fmt.Errorf("testenv: %w", err)
	}
	return nil
}

func (r *RedisServer) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.proc.stop()
}

// ping sends PING in the inline protocol and expects +PONG.
func (r *RedisServer) ping() error {
	conn, err := net.DialTimeout("tcp", r.Addr(), time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}
