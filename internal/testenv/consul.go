package testenv

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ConsulAgent is the `consul agent -dev` shared by the test binary. Dev mode
// keeps everything in memory: a restart empties the KV store and catalog.
// Stop and Start act on the shared agent, so tests that use them must not run
// in parallel with other Consul tests.
type ConsulAgent struct {
	mu    sync.Mutex // serializes Start, Stop and close
	dir   string     // holds consul.log
	ports consulPorts
	proc  *child
}

// consulPorts are the agent's listeners, all on 127.0.0.1. DNS is off.
type consulPorts struct {
	http, grpc, serfLAN, serfWAN, server int
}

// consulReadyTimeout bounds how long a start waits for a raft leader.
const consulReadyTimeout = 60 * time.Second

var (
	consulOnce   sync.Once
	consulShared *ConsulAgent
	consulErr    error
)

// Consul starts (once per test binary) a Consul dev agent on free ports of
// 127.0.0.1 and waits until it has elected itself leader. It lives until
// [Main] stops it; should the test process die first, the agent is killed.
//
// The consul binary is looked up on PATH, then at $OMNIBRIDGE_CACHE/bin/consul,
// then at ~/.cache/omnibridge/bin/consul (where scripts/test-deps.sh builds
// it). It skips tb (fails it with CI=true) when none is found.
func Consul(tb testing.TB) *ConsulAgent {
	tb.Helper()
	consulOnce.Do(func() { consulShared, consulErr = startConsul() })
	if consulErr != nil {
		abort(tb, consulErr)
	}
	return consulShared
}

// Addr returns the HTTP API address, "127.0.0.1:PORT".
func (c *ConsulAgent) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.ports.http))
}

// Stop stops the agent (SIGTERM).
func (c *ConsulAgent) Stop(tb testing.TB) {
	tb.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.proc.stop()
}

// Start starts the agent again, empty, on the same ports and waits for its
// leader. It is a no-op while running.
func (c *ConsulAgent) Start(tb testing.TB) {
	tb.Helper()
	if err := c.start(); err != nil {
		tb.Fatal(err)
	}
}

// consulBinary finds the consul executable; see Consul.
func consulBinary() (string, error) {
	var fallbacks []string
	if d := os.Getenv("OMNIBRIDGE_CACHE"); d != "" {
		fallbacks = append(fallbacks, filepath.Join(d, "bin", "consul"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		fallbacks = append(fallbacks, filepath.Join(home, ".cache", "omnibridge", "bin", "consul"))
	}
	if p, ok := findBinary("consul", fallbacks...); ok {
		return p, nil
	}
	return "", &notInstalledError{what: "consul", hint: "run scripts/test-deps.sh to build consul"}
}

// ConsulACLToken is the management token of the agent ConsulACL starts.
const ConsulACLToken = "5b1d3f0e-7c2a-4e8b-9f61-0d2c4a6e8b10"

var (
	consulACLOnce   sync.Once
	consulACLShared *ConsulAgent
	consulACLErr    error
)

// ConsulACL starts (once per test binary) a second Consul dev agent with
// ACLs enabled and a default policy of deny: only requests carrying
// [ConsulACLToken] (the management token) may read or write.
func ConsulACL(tb testing.TB) *ConsulAgent {
	tb.Helper()
	consulACLOnce.Do(func() {
		consulACLShared, consulACLErr = startConsul("-hcl",
			`acl { enabled = true default_policy = "deny" tokens { initial_management = "`+ConsulACLToken+`" } }`)
	})
	if consulACLErr != nil {
		abort(tb, consulACLErr)
	}
	return consulACLShared
}

func startConsul(extra ...string) (_ *ConsulAgent, err error) {
	bin, err := consulBinary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(tempBase(), "testenv-consul-")
	if err != nil {
		return nil, fmt.Errorf("testenv: create consul dir: %w", err)
	}
	c := &ConsulAgent{dir: dir}
	for attempt := 1; ; attempt++ {
		p, err := freePorts(5)
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("testenv: consul: %w", err)
		}
		c.ports = consulPorts{http: p[0], grpc: p[1], serfLAN: p[2], serfWAN: p[3], server: p[4]}
		c.proc = &child{
			name: "consul",
			path: bin,
			args: append([]string{
				"agent", "-dev", "-node", "testenv",
				"-bind", "127.0.0.1", "-client", "127.0.0.1",
				"-http-port", strconv.Itoa(c.ports.http),
				"-dns-port", "-1",
				"-grpc-port", strconv.Itoa(c.ports.grpc),
				"-grpc-tls-port", "-1",
				"-serf-lan-port", strconv.Itoa(c.ports.serfLAN),
				"-serf-wan-port", strconv.Itoa(c.ports.serfWAN),
				"-server-port", strconv.Itoa(c.ports.server),
				"-log-level", "info",
			}, extra...),
			logPath: filepath.Join(dir, "consul.log"),
		}
		err = c.start()
		if err == nil {
			break
		}
		if attempt == startAttempts || !portTaken(c.proc.log()) {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
	addShared(c.close)
	return c, nil
}

func (c *ConsulAgent) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc.cmd != nil {
		return nil
	}
	if err := c.proc.start(); err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	if err := c.proc.waitReady(consulReadyTimeout, c.leader); err != nil {
		c.proc.stop()
		return fmt.Errorf("testenv: %w", err)
	}
	return nil
}

// close stops the agent and removes its directory. Main calls it.
func (c *ConsulAgent) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.proc.stop()
	return os.RemoveAll(c.dir)
}

// leader succeeds once the agent reports a raft leader, which KV writes need.
func (c *ConsulAgent) leader() error {
	client := http.Client{Timeout: time.Second}
	resp, err := client.Get("http://" + c.Addr() + "/v1/status/leader")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status/leader: %s", resp.Status)
	}
	if s := strings.Trim(strings.TrimSpace(string(body)), `"`); s == "" {
		return errors.New("no leader yet")
	}
	return nil
}
