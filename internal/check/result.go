package check

import (
	"fmt"
	"io"
)

// Status is the outcome of one check.
type Status int

// Outcomes.
const (
	Pass Status = iota
	Fail
	Skip
)

// Result is one check's outcome.
type Result struct {
	Name   string
	Status Status
	// Detail says what was found (pass, fail) or why it was skipped.
	Detail string
	// Hint says what to do about a failure.
	Hint string
}

// Report is the outcome of every check, in a fixed order.
type Report struct {
	Results []Result
}

// OK reports whether no check failed.
func (r Report) OK() bool {
	for _, res := range r.Results {
		if res.Status == Fail {
			return false
		}
	}
	return true
}

// WriteTo prints one line per check, "✔ name — detail", "✘ name — detail"
// followed by an indented hint, or "– name — skipped: note", then a summary.
func (r Report) WriteTo(w io.Writer) (int64, error) {
	cw := &countingWriter{w: w}
	passed, failed, skipped := 0, 0, 0
	for _, res := range r.Results {
		switch res.Status {
		case Pass:
			passed++
			fmt.Fprintf(cw, "✔ %s — %s\n", res.Name, res.Detail)
		case Fail:
			failed++
			fmt.Fprintf(cw, "✘ %s — %s\n", res.Name, res.Detail)
			if res.Hint != "" {
				fmt.Fprintf(cw, "    hint: %s\n", res.Hint)
			}
		case Skip:
			skipped++
			fmt.Fprintf(cw, "– %s — skipped: %s\n", res.Name, res.Detail)
		}
	}
	verdict := "all checks passed"
	if failed > 0 {
		verdict = fmt.Sprintf("%d check(s) failed", failed)
	}
	fmt.Fprintf(cw, "\n%s (%d passed, %d failed, %d skipped)\n", verdict, passed, failed, skipped)
	return cw.n, cw.err
}

type countingWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}
