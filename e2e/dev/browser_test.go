package dev

import (
	"time"

	"github.com/chromedp/chromedp"
	"github.com/omninode/bridge/internal/browsertest"
	"testing"
)

// browser wraps internal/browsertest for the demo's dashboard test. A live
// demo has failing calls on purpose (503s in the tap are data, not page
// errors), so only exceptions count as page failures.
type browser struct{ *browsertest.Browser }

func newBrowser(t *testing.T) *browser {
	t.Helper()
	return &browser{browsertest.New(t, browsertest.Options{Prefix: "dev-"})}
}

func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) { b.Do(steps...) }

func (b *browser) waitJS(what, expr string, timeout time.Duration) { b.WaitJS(what, expr, timeout) }

func (b *browser) eval(expr string) string { return b.Eval(expr) }

func (b *browser) screenshot(name string) { b.Screenshot(name) }
