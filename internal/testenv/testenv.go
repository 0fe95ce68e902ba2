package testenv

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Main runs the tests of m, then stops the servers shared by the test binary
// (PostgreSQL and Consul) and exits with the tests' status, or 1 if they
// passed but a shared server failed to stop. Call it from TestMain in every
// package that uses [PostgreSQL] or [Consul]; see the package comment.
func Main(m *testing.M) {
	code := m.Run()
	if err := stopShared(); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

var (
	sharedMu sync.Mutex
	// sharedClose holds the teardown of every shared server, in start order.
	sharedClose []func() error
)

// addShared registers the teardown of a server that lives as long as the
// test binary; Main runs it.
func addShared(close func() error) {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	sharedClose = append(sharedClose, close)
}

// stopShared tears down the shared servers in reverse start order.
func stopShared() error {
	sharedMu.Lock()
	closes := sharedClose
	sharedClose = nil
	sharedMu.Unlock()
	var errs []error
	for i := len(closes) - 1; i >= 0; i-- {
		errs = append(errs, closes[i]())
	}
	return errors.Join(errs...)
}

// notInstalledError reports a server binary that is not installed.
type notInstalledError struct {
	what string // what is missing, e.g. "redis-server"
	hint string // how to install it
}

func (e *notInstalledError) Error() string {
	return fmt.Sprintf("testenv: %s is not installed; %s", e.what, e.hint)
}

// abort ends the test for err: a skip when err is a notInstalledError and CI
// is not "true", a failure otherwise.
func abort(tb testing.TB, err error) {
	tb.Helper()
	var ni *notInstalledError
	if errors.As(err, &ni) {
		if os.Getenv("CI") != "true" {
			tb.Skip(err.Error())
		}
		tb.Fatal(err.Error() + " (CI=true makes a missing server a failure)")
	}
	tb.Fatal(err.Error())
}

// findBinary returns the first executable found: name on PATH, then each of
// the fallback paths in order.
func findBinary(name string, fallbacks ...string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	for _, p := range fallbacks {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

// freePorts returns n distinct ports that were free on 127.0.0.1 for both TCP
// and UDP (Consul's serf ports use both) a moment ago. Another process can
// still take one before the server binds it; callers retry on that.
func freePorts(n int) ([]int, error) {
	var held []io.Closer
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries > 20*n {
			return nil, fmt.Errorf("find %d free ports: gave up after %d tries", n, tries)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find free port: %w", err)
		}
		held = append(held, l)
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		held = append(held, u)
		ports = append(ports, port)
	}
	return ports, nil
}

// logTailBytes is how much of a server's log a start failure quotes.
const logTailBytes = 4 << 10

// logSince returns what was appended to the file at path after offset off,
// cut to its last logTailBytes.
func logSince(path string, off int64) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if fi.Size()-off > logTailBytes {
		off = fi.Size() - logTailBytes
	}
	b, err := io.ReadAll(io.NewSectionReader(f, off, fi.Size()-off))
	if err != nil {
		return fmt.Sprintf("(read log: %v)", err)
	}
	return strings.TrimSpace(string(b))
}

// logSize returns the current size of the file at path, 0 if it is absent.
func logSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// portTaken reports whether a server log says its port was already in use.
func portTaken(log string) bool {
	return strings.Contains(strings.ToLower(log), "already in use")
}

// startAttempts is how many free ports a server start tries before giving up,
// since a port found free can be taken before the server binds it.
const startAttempts = 3

// child is a server process started directly by the test binary, with its
// stdout and stderr appended to a log file.
type child struct {
	name    string   // for messages, e.g. "redis-server"
	path    string   // the executable
	args    []string // its arguments
	logPath string   // where stdout and stderr go

	cmd     *exec.Cmd
	done    chan struct{} // closed once the process has exited and been reaped
	logFrom int64         // log size when the process started
}

// start starts the process. It gets SIGKILL if the test process dies first.
// (Linux delivers Pdeathsig when the thread that forked the child exits; Go
// keeps its threads for the life of the process unless a goroutine exits
// while locked to one, which callers of this package do not do.)
func (c *child) start() error {
	c.logFrom = logSize(c.logPath)
	logf, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open %s log: %w", c.name, err)
	}
	// The child holds its own descriptor for the log once started.
	defer logf.Close()
	cmd := exec.Command(c.path, c.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", c.name, err)
	}
	done := make(chan struct{})
	// Owned by c: ends when the process exits, which stop guarantees.
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	c.cmd, c.done = cmd, done
	return nil
}

// stopTimeout is how long stop waits after SIGTERM before it sends SIGKILL.
const stopTimeout = 10 * time.Second

// stop ends the process (SIGTERM, then SIGKILL after stopTimeout) and waits
// for it. It is a no-op when the process is not running.
func (c *child) stop() {
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(stopTimeout):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	c.cmd, c.done = nil, nil
}

// log returns the tail of what the current run wrote to the log.
func (c *child) log() string { return logSince(c.logPath, c.logFrom) }

// waitReady polls probe every 50ms until it succeeds, the process exits or
// timeout passes; the error quotes the tail of the process's log.
func (c *child) waitReady(timeout time.Duration, probe func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-c.done:
			return fmt.Errorf("%s exited during start: %s\n--- log ---\n%s", c.name, c.cmd.ProcessState, c.log())
		default:
		}
		err := probe()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %w\n--- log ---\n%s", c.name, timeout, err, c.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// tempBase returns the directory for shared servers' temporary directories:
// os.TempDir, or /tmp when that path is too long for a Unix socket path
// (PostgreSQL puts its socket there; the limit is about 100 bytes).
func tempBase() string {
	if d := os.TempDir(); len(d) <= 60 {
		return d
	}
	return "/tmp"
}
