package itest

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/swapmeet/swapmeet/internal/sandbox"
)

// Binary is the swapmeet command, built once per test binary: tests that
// need real processes (kill, pause, several replicas) run what users run.
// A package that uses it runs its tests through Main, which removes it.
var Binary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "swapmeet-bin-")
	if err != nil {
		return "", err
	}
	binDir.Store(&dir)
	return sandbox.BuildSwapmeet(context.Background(), dir)
})

var binDir atomic.Pointer[string]

// Main runs a package's tests (call it from TestMain), then removes the
// binary Binary built for them, if any.
func Main(m *testing.M) {
	code := m.Run()
	if dir := binDir.Load(); dir != nil {
		_ = os.RemoveAll(*dir)
	}
	os.Exit(code)
}

// Output collects a process's output for assertions.
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// StartProcess runs `swapmeet <args>` against e, env overriding e's
// settings, and kills it when the test ends if it still runs. Its output
// is kept, and copied to stderr when SWAPMEET_TEST_LOG is set.
func (e *Env) StartProcess(t T, args []string, env ...string) (*exec.Cmd, *Output) {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatalf("%v", err)
	}
	out := &Output{}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(os.Environ(), e.Environ()...), env...)
	cmd.Stdout, cmd.Stderr = out, out
	if os.Getenv("SWAPMEET_TEST_LOG") != "" {
		cmd.Stdout, cmd.Stderr = io.MultiWriter(out, os.Stderr), io.MultiWriter(out, os.Stderr)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start swapmeet %v: %v", args, err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, out
}
