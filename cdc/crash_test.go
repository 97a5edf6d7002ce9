package cdc_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/swapmeet/swapmeet/internal/itest"
	"github.com/swapmeet/swapmeet/internal/readstore"
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
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "cdc")
	cmd.Env = append(os.Environ(), e.Environ()...)
	cmd.Env = append(cmd.Env, "SWAPMEET_METRICS_ADDR=127.0.0.1:0")
	if testing.Verbose() {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
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
	return cmd
}

// TestCDCSurvivesSIGKILL streams sign-ups and renames while the cdc process
// is killed without warning at random moments and restarted. Afterwards
// every user document must equal what Postgres holds.
func TestCDCSurvivesSIGKILL(t *testing.T) {
	e := itest.New(t)
	_, a := e.StartAPI(t)
	ctx := context.Background()

	cmd := startCDCProcess(t, e)
	e.WaitForSlot(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writeErr error
	var writes int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			s, err := a.Commands.SignUp(ctx, fmt.Sprintf("user%d@example.com", i), "correct horse", fmt.Sprintf("User %d", i))
			if err != nil {
				writeErr = err
				return
			}
			if i%3 == 0 {
				name := fmt.Sprintf("Renamed %d", i)
				if _, err := a.Commands.UpdateProfile(ctx, s.UserID, &name, nil); err != nil {
					writeErr = err
					return
				}
			}
			writes++
		}
	}()

	for kill := 0; kill < 4; kill++ {
		time.Sleep(time.Duration(150+rand.IntN(350)) * time.Millisecond) // a random moment, not a synchronisation
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		cmd = startCDCProcess(t, e)
	}
	close(stop)
	wg.Wait()
	if writeErr != nil {
		t.Fatalf("writes failed: %v", writeErr)
	}
	if writes < 10 {
		t.Fatalf("only %d sign-ups happened; the test proved nothing", writes)
	}

	// Converged: every user in Postgres has an equal document, and no more.
	itest.Eventually(t, 30*time.Second, "mongo to match postgres", func() (bool, error) {
		drift, err := userDrift(ctx, e)
		return err == nil && drift == "", fmt.Errorf("%s %v", drift, err)
	})
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("cdc did not exit cleanly on SIGTERM: %v", err)
	}
	t.Logf("%d sign-ups across 4 SIGKILLs", writes)
}

// userDrift describes how the users collection differs from Postgres.
func userDrift(ctx context.Context, e *itest.Env) (string, error) {
	rows, err := e.PG.Query(ctx, `SELECT id, display_name, bio, created_at FROM users`)
	if err != nil {
		return "", err
	}
	want := map[string]readstore.User{}
	for rows.Next() {
		var id uuid.UUID
		var u readstore.User
		if err := rows.Scan(&id, &u.DisplayName, &u.Bio, &u.JoinedAt); err != nil {
			return "", err
		}
		u.ID = id.String()
		want[u.ID] = u
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	got := map[string]readstore.User{}
	if err := e.Reads.AllUsers(ctx, func(u readstore.User) error { got[u.ID] = u; return nil }); err != nil {
		return "", err
	}
	for id, w := range want {
		g, ok := got[id]
		switch {
		case !ok:
			return fmt.Sprintf("user %s missing from mongo (%d of %d present)", id, len(got), len(want)), nil
		case g.DisplayName != w.DisplayName || g.Bio != w.Bio || !g.JoinedAt.Equal(w.JoinedAt.Truncate(time.Millisecond)):
			return fmt.Sprintf("user %s: mongo %+v, postgres %+v", id, g, w), nil
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("mongo has %d users, postgres %d", len(got), len(want)), nil
	}
	return "", nil
}
