// Package browsertest drives headless Chromium (Debian's chromium package)
// for the dashboard's browser tests: it finds the browser, starts it at a
// 1366×768 laptop size with the flags this machine needs, collects the
// page's console, and saves screenshots. Only tests use it.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ChromiumPath returns the browser to drive ($OMNIBRIDGE_CHROMIUM, then
// /usr/bin/chromium), skipping the test when there is none, or failing it
// under CI=true.
func ChromiumPath(t testing.TB) string {
	t.Helper()
	for _, p := range []string{os.Getenv("OMNIBRIDGE_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	msg := "chromium not found: apt-get install -y chromium (or set OMNIBRIDGE_CHROMIUM)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// Options adjust a Browser.
type Options struct {
	// PageError says which console messages are page failures (reported by
	// Failures); nil counts exceptions only.
	PageError func(chromedp.ConsoleMessage) bool
	// Prefix goes before every screenshot's file name.
	Prefix string
}

// Browser is one headless Chromium with its console log. Its methods fail
// the test on error.
type Browser struct {
	Ctx      context.Context
	t        testing.TB
	opts     Options
	dir      string
	mu       sync.Mutex
	console  []string
	failures []string
}

// New starts Chromium for t (150 s at most) and stops it at t's cleanup.
func New(t testing.TB, opts Options) *Browser {
	t.Helper()
	if opts.PageError == nil {
		opts.PageError = func(m chromedp.ConsoleMessage) bool { return m.IsException() }
	}
	allocOpts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(ChromiumPath(t)),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Headless,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1366, 768),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), allocOpts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 150*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	b := &Browser{Ctx: ctx, t: t, opts: opts, dir: t.TempDir()}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m.String())
			if b.opts.PageError(m) {
				b.failures = append(b.failures, m.String())
			}
			b.mu.Unlock()
		}
	}()
	return b
}

// Do runs browser actions.
func (b *Browser) Do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.Ctx, steps...); err != nil {
		b.t.Fatalf("browser: %v\nconsole:\n%s", err, b.ConsoleText())
	}
}

// WaitJS waits until a JavaScript expression is truthy.
func (b *Browser) WaitJS(what, expr string, timeout time.Duration) {
	b.t.Helper()
	if err := chromedp.Do(b.Ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(timeout))); err != nil {
		b.t.Fatalf("wait for %s (%s): %v\nconsole:\n%s", what, expr, err, b.ConsoleText())
	}
}

// Eval evaluates a JavaScript expression that yields a string.
func (b *Browser) Eval(expr string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.Ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// ConsoleText returns everything the page logged so far.
func (b *Browser) ConsoleText() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.console, "\n")
}

// Failures returns the console messages that Options.PageError counted.
func (b *Browser) Failures() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.failures...)
}

// Screenshot saves the viewport as PREFIX+name.png in the test's temporary
// directory and, when OMNIBRIDGE_ARTIFACTS is set, there too.
func (b *Browser) Screenshot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.Ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	dirs := []string{b.dir}
	if d := os.Getenv("OMNIBRIDGE_ARTIFACTS"); d != "" {
		dirs = append(dirs, d)
	}
	file := b.opts.Prefix + name + ".png"
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.t.Fatalf("make artifacts dir: %v", err)
		}
		if err := os.WriteFile(filepath.Join(d, file), png, 0o644); err != nil {
			b.t.Fatalf("save screenshot: %v", err)
		}
	}
	b.t.Logf("screenshot %s", filepath.Join(b.dir, file))
}
