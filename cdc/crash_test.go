package cdc_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/swapmeet/swapmeet/internal/itest"
)

// buildBinary compiles the swapmeet command once per test binary.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "swapmeet-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "swapmeet")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/swapmeet/swapmeet/cmd/swapmeet").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// startCDCProcess runs `swapmeet cdc` against e as a separate process.
func startCDCProcess(t *testing.T, e *itest.Env) *exec.Cmd {
	t.Helper()
	cmd, _ := startCDCProcessLogged(t, e)
	return cmd
}

// lockedBuffer collects a process's output for assertions.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startCDCProcessLogged is startCDCProcess, keeping the process's output;
// env overrides e's settings.
func startCDCProcessLogged(t *testing.T, e *itest.Env, env ...string) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	logs := &lockedBuffer{}
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "cdc")
	cmd.Env = append(os.Environ(), e.Environ()...)
	cmd.Env = append(cmd.Env, "SWAPMEET_CDC_METRICS_ADDR=127.0.0.1:0")
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if os.Getenv("SWAPMEET_TEST_LOG") != "" {
		cmd.Stdout, cmd.Stderr = io.MultiWriter(logs, os.Stderr), io.MultiWriter(logs, os.Stderr)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, logs
}

// TestCDCSurvivesSIGKILL runs a mixed write load (sign-ups, listings,
// orders through their states, reviews, renames) while the cdc process is
// killed without warning at random moments and restarted. Afterwards every
// document equals what Postgres implies and no cache entry is stale.
func TestCDCSurvivesSIGKILL(t *testing.T) {
	e := itest.New(t)
	_, a := e.StartAPI(t)
	ctx := context.Background()

	cmd := startCDCProcess(t, e)
	e.WaitForSlot(t)
	loadCtx, stopLoad := context.WithCancel(ctx)
	w := itest.NewWorkload(a, 1)
	var wg sync.WaitGroup
	var loadErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		loadErr = w.Run(loadCtx, 0)
	}()
	go func() { // readers fill the cache meanwhile
		defer wg.Done()
		for loadCtx.Err() == nil {
			for _, id := range w.UserIDs() {
				_, _ = a.Queries.GetUser(loadCtx, id.String(), "")
			}
		}
	}()

	for kill := 0; kill < 4; kill++ {
		time.Sleep(time.Duration(200+rand.IntN(400)) * time.Millisecond) // a random moment, not a synchronisation
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		cmd = startCDCProcess(t, e)
	}
	stopLoad()
	wg.Wait()
	if loadErr != nil {
		t.Fatalf("writes failed: %v", loadErr)
	}
	if w.Ops.Load() < 50 {
		t.Fatalf("only %d writes happened; the test proved nothing", w.Ops.Load())
	}

	e.WaitConverged(t, 60*time.Second)
	stale, err := e.StaleCacheEntries(ctx)
	if err != nil || len(stale) > 0 {
		t.Fatalf("stale cache entries: %v %v", stale, err)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("cdc did not exit cleanly on SIGTERM: %v", err)
	}
	t.Logf("%d writes across 4 SIGKILLs", w.Ops.Load())
}
