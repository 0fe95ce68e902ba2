package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInjectCommand runs `omnibridge inject` on the injector's golden
// inputs, from a file and from standard input, and compares with the
// golden outputs (rewritten by go test ./controlplane/inject -update).
func TestInjectCommand(t *testing.T) {
	files, err := filepath.Glob("../../controlplane/inject/testdata/in/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, file := range files {
		name := filepath.Base(file)
		want, err := os.ReadFile(filepath.Join("../../controlplane/inject/testdata/out", name))
		if err != nil {
			t.Fatal(err)
		}
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		args := []string{"inject"}
		if strings.HasPrefix(name, "enable-") {
			args = append(args, "--enable")
		}
		for _, viaStdin := range []bool{false, true} {
			root := newRoot()
			var out, errOut bytes.Buffer
			root.SetOut(&out)
			root.SetErr(&errOut)
			if viaStdin {
				root.SetIn(bytes.NewReader(src))
				root.SetArgs(append(args, "-f", "-"))
			} else {
				root.SetArgs(append(args, "-f", file))
			}
			if err := root.Execute(); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("%s (stdin %v): output differs from the golden file:\n%s", name, viaStdin, out.String())
			}
			if errOut.Len() == 0 && strings.Contains(string(src), "kind: Deployment") {
				t.Errorf("%s: no summary on standard error", name)
			}
		}
	}

	root := newRoot()
	root.SetOut(new(bytes.Buffer))
	root.SetErr(new(bytes.Buffer))
	root.SetArgs([]string{"inject"})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "-f") {
		t.Errorf("inject without -f: err %v, want one asking for -f", err)
	}
}
