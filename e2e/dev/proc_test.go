package dev

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// repoRoot is the module root (where go.mod is).
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}

// buildBinary builds cmd/omnibridge into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "omnibridge")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/omnibridge")
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build omnibridge: %v\n%s", err, out)
	}
	return bin
}

// devProc is a running `omnibridge dev`.
type devProc struct {
	cmd  *exec.Cmd
	url  string
	done chan struct{}
	err  error

	mu     sync.Mutex
	stdout bytes.Buffer
	stderr bytes.Buffer
}

var urlLine = regexp.MustCompile(`control plane\s+(http://\S+)`)

// startDev runs the binary with args and waits for its start banner.
func startDev(t *testing.T, bin string, args ...string) *devProc {
	t.Helper()
	p := &devProc{done: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"dev"}, args...)...)
	p.cmd.Env = append(os.Environ(), "NO_COLOR=1")
	outR, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		var url string
		sc := bufio.NewScanner(outR)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.stdout.WriteString(line + "\n")
			p.mu.Unlock()
			if m := urlLine.FindStringSubmatch(line); m != nil {
				url = m[1]
			}
			// The banner ends with the KV backend's line.
			if strings.HasPrefix(strings.TrimSpace(line), "kv ") && url != "" {
				select {
				case urls <- url:
				default:
				}
			}
		}
	})
	wg.Go(func() {
		b, _ := io.ReadAll(errR)
		p.mu.Lock()
		p.stderr.Write(b)
		p.mu.Unlock()
	})
	go func() {
		wg.Wait()
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(15 * time.Second):
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
		if t.Failed() {
			t.Logf("omnibridge dev stdout (tail):\n%s", tail(p.Stdout(), 60))
			t.Logf("omnibridge dev stderr (tail):\n%s", tail(p.Stderr(), 40))
		}
	})
	select {
	case p.url = <-urls:
	case <-p.done:
		t.Fatalf("omnibridge dev exited before serving: %v\n%s\n%s", p.err, p.Stdout(), p.Stderr())
	case <-time.After(60 * time.Second):
		t.Fatalf("omnibridge dev printed no control plane address\n%s", p.Stdout())
	}
	return p
}

func (p *devProc) Stdout() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stdout.String()
}

func (p *devProc) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// wait waits for the process to exit by itself.
func (p *devProc) wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return fmt.Errorf("omnibridge dev still running: %w", ctx.Err())
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
