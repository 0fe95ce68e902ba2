package faults

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/omninode/bridge/internal/testenv"
	"go.uber.org/goleak"
)

// binary is the omnibridge binary built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	// One directory per test process (a soak and the suite may run at the
	// same time); testenv.Main exits without returning, so each run removes
	// the directories of runs that are no longer alive instead.
	root := filepath.Join(os.TempDir(), "omnibridge-faults")
	removeStale(root)
	dir := filepath.Join(root, strconv.Itoa(os.Getpid()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "faults: binary dir:", err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "omnibridge")
	if b := os.Getenv("OMNIBRIDGE_FAULTS_BINARY"); b != "" {
		// A prebuilt binary (the soak script's, or one under investigation).
		binary = b
		testenv.Main(m)
	}
	// Built without -race: the processes under test are the product as
	// shipped; the test process itself runs with whatever flags go test got.
	cmd := exec.Command("go", "build", "-o", binary, "github.com/omninode/bridge/cmd/omnibridge")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "faults: build omnibridge:", err)
		os.Exit(1)
	}
	testenv.Main(m)
}

// removeStale removes root's per-process directories whose process is gone.
func removeStale(root string) {
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !e.IsDir() {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			os.RemoveAll(filepath.Join(root, e.Name()))
		}
	}
}

// noLeaks registers, first, a cleanup that fails t if goroutines started by
// the test outlive it (it runs last, after every other cleanup). Goroutines
// that existed before the test (the shared PostgreSQL and Consul watchers)
// are ignored.
func noLeaks(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		goleak.VerifyNone(t, before,
			goleak.IgnoreAnyFunction("github.com/omninode/bridge/internal/testenv.(*child).start.func1"),
			goleak.IgnoreAnyFunction("github.com/omninode/bridge/internal/testenv.(*pgServer).startWatchdog.func1"),
		)
	})
}
