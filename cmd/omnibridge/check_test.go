package main

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/omninode/bridge/internal/testenv"
)

// TestCheckCommand: `omnibridge check` against a real broker passes with
// exit status 0, and exits 1 with a hint when a server does not answer.
func TestCheckCommand(t *testing.T) {
	brokers := strings.Join(testenv.Kafka(t).Brokers(), ",")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	for _, tc := range []struct {
		args   []string
		code   int
		output []string
	}{
		{[]string{"--brokers", brokers}, 0, []string{"✔ bus — 1 broker(s)", "✔ bus topics — all present", "– redis — skipped", "all checks passed"}},
		{[]string{"--brokers", brokers, "--redis", closed, "--timeout", "1s"}, 1, []string{"✔ bus", "✘ redis — PING " + closed, "hint: is redis-server running and reachable at " + closed, "1 check(s) failed"}},
		{nil, -1, nil},
	} {
		root := newRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(append([]string{"check"}, tc.args...))
		err := root.Execute()
		var ee exitError
		switch {
		case tc.code == 0 && err != nil:
			t.Errorf("%v: %v\n%s", tc.args, err, out.String())
		case tc.code == 1 && (!errors.As(err, &ee) || ee.code != 1):
			t.Errorf("%v: err %v, want exit status 1\n%s", tc.args, err, out.String())
		case tc.code == -1 && (err == nil || !strings.Contains(err.Error(), "nothing to check")):
			t.Errorf("no flags: err %v, want nothing to check", err)
		}
		for _, want := range tc.output {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%v: output lacks %q:\n%s", tc.args, want, out.String())
			}
		}
	}
}
