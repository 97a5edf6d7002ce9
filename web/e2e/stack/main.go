// Command stack runs a command, the browser tests, against a private
// Swapmeet: a fresh Postgres database (migrated with `swapmeet migrate`),
// its own Mongo database, Redis key prefix and replication slot, and its
// own `swapmeet serve` and `swapmeet cdc` processes on free ports, all on
// the services that `make up` started. It stops and removes only what it
// made, whatever happens, and exits with the command's status.
//
//	go run ./web/e2e/stack -bin bin/swapmeet -logs web/e2e/output -- node --test web/e2e/
//
// The command gets E2E_BASE_URL (the app and API), E2E_OUTPUT and
// E2E_MEDIA_GET_EXPIRY. Presigned image URLs last -media-get-expiry (20 s
// by default, instead of the server's 10 minutes), so that the test sees
// an open page outlive them and the app refresh them, throughout.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/swapmeet/swapmeet/internal/itest"
	"github.com/swapmeet/swapmeet/internal/wait"
)

func main() {
	bin := flag.String("bin", "bin/swapmeet", "the swapmeet binary, built with the web app (make build)")
	out := flag.String("logs", "web/e2e/output", "where the server logs go")
	expiry := flag.Duration("media-get-expiry", 20*time.Second, "how long presigned image URLs last (SWAPMEET_MEDIA_GET_EXPIRY); 0 leaves the server's default")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: stack [-bin bin/swapmeet] [-logs dir] [-media-get-expiry 20s] -- command [args...]")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if *expiry < 0 {
		fmt.Fprintln(os.Stderr, "stack: -media-get-expiry must not be negative")
		os.Exit(2)
	}
	os.Exit(run(*bin, *out, *expiry, flag.Args()))
}

// fatal is how the harness's Fatalf unwinds to run's cleanup.
type fatal struct{ msg string }

// harness gives internal/itest what it needs of a test.
type harness struct{ cleanups []func() }

func (h *harness) Helper()          {}
func (h *harness) Cleanup(f func()) { h.cleanups = append(h.cleanups, f) }
func (h *harness) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "stack: "+format+"\n", args...)
}
func (h *harness) Errorf(format string, args ...any) { h.Logf(format, args...) }
func (h *harness) Fatalf(format string, args ...any) { panic(fatal{fmt.Sprintf(format, args...)}) }

func (h *harness) cleanup() {
	for i := len(h.cleanups) - 1; i >= 0; i-- {
		h.cleanups[i]()
	}
	h.cleanups = nil
}

func run(bin, logDir string, mediaGetExpiry time.Duration, command []string) (status int) {
	h := &harness{}
	defer h.cleanup()
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(fatal)
			if !ok {
				panic(r)
			}
			fmt.Fprintf(os.Stderr, "stack: %s\n", f.msg)
			status = 1
		}
	}()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	bin, err := filepath.Abs(bin)
	if err != nil {
		h.Fatalf("%v", err)
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		h.Fatalf("%v", err)
	}

	start := time.Now()
	env := itest.New(h) // fresh database, Mongo database, Redis prefix, slot name
	httpAddr, apiMetrics, cdcMetrics := freeAddr(h), freeAddr(h), freeAddr(h)
	baseURL := "http://" + httpAddr
	environ := append(os.Environ(), env.Environ()...)
	environ = append(environ,
		"SWAPMEET_HTTP_ADDR="+httpAddr,
		"SWAPMEET_API_METRICS_ADDR="+apiMetrics,
		"SWAPMEET_CDC_METRICS_ADDR="+cdcMetrics,
		// The page's origin uploads to the bucket. The defaults stay, so a
		// `make run` sharing the bucket keeps working meanwhile.
		"SWAPMEET_WEB_ORIGINS="+baseURL+",http://127.0.0.1:8080,http://localhost:5173",
	)
	if mediaGetExpiry > 0 {
		environ = append(environ, "SWAPMEET_MEDIA_GET_EXPIRY="+mediaGetExpiry.String())
	}
	// Every user of the test signs up from 127.0.0.1, where real users each
	// have their own address: the per-address sign-up limit (10 a minute)
	// would stop the test's second screen size, not abuse.
	environ = append(environ, "SWAPMEET_LIMIT_SIGNUP_PER_CLIENT=100")

	// The schema, through the binary as an operator would (itest.New has
	// migrated already, so this also checks that a second run is a no-op).
	migrate := exec.CommandContext(ctx, bin, "migrate")
	migrate.Env, migrate.Stdout, migrate.Stderr = environ, os.Stderr, os.Stderr
	if err := migrate.Run(); err != nil {
		h.Fatalf("swapmeet migrate: %v", err)
	}

	cdc := startProcess(h, bin, "cdc", environ, logDir)
	env.WaitForSlot(h)
	serve := startProcess(h, bin, "serve", environ, logDir)
	waitForApp(h, ctx, baseURL, serve)
	lifetime := "the server's default"
	if mediaGetExpiry > 0 {
		lifetime = mediaGetExpiry.String()
	}
	h.Logf("swapmeet serve on %s and cdc ready in %s (database %s; image URLs last %s)", baseURL, time.Since(start).Round(time.Millisecond), env.MongoDB, lifetime)

	cmd := exec.Command(command[0], command[1:]...)
	cmd.Env = append(os.Environ(), "E2E_BASE_URL="+baseURL, "E2E_OUTPUT="+logDir)
	if mediaGetExpiry > 0 {
		cmd.Env = append(cmd.Env, "E2E_MEDIA_GET_EXPIRY="+mediaGetExpiry.String())
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		h.Fatalf("start %s: %v", command[0], err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = cmd.Process.Signal(syscall.SIGTERM)
		err = <-done
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		status = 0
	case errors.As(err, &exit):
		status = max(exit.ExitCode(), 1)
	default:
		h.Logf("%s: %v", command[0], err)
		status = 1
	}
	for _, p := range []*process{serve, cdc} {
		if err := p.stop(); err != nil {
			h.Logf("%s: %v", p.name, err)
			status = max(status, 1)
		}
	}
	if status != 0 {
		for _, p := range []*process{serve, cdc} {
			p.tail(40)
		}
	}
	return status
}

func freeAddr(h *harness) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.Fatalf("pick a port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// process is a swapmeet subcommand the harness started, and stops.
type process struct {
	name, log string
	cmd       *exec.Cmd
	exited    chan struct{}
	err       error
}

func startProcess(h *harness, bin, name string, environ []string, logDir string) *process {
	p := &process{name: "swapmeet " + name, log: filepath.Join(logDir, name+".log"), exited: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		h.Fatalf("%v", err)
	}
	p.cmd = exec.Command(bin, name)
	p.cmd.Env, p.cmd.Stdout, p.cmd.Stderr = environ, f, f
	if err := p.cmd.Start(); err != nil {
		f.Close()
		h.Fatalf("start %s: %v", p.name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
		close(p.exited)
	}()
	h.Cleanup(func() { _ = p.stop() }) // on a failure before run stops it
	return p
}

// stop asks the process to finish (SIGTERM) and kills it after 15 s. It
// reports an exit that was not asked for or not clean.
func (p *process) stop() error {
	select {
	case <-p.exited:
		if p.err == nil {
			return nil
		}
		return fmt.Errorf("exited early: %v (log: %s)", p.err, p.log)
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		p.err = nil // the exit we asked for
		return nil
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("did not stop within 15s of SIGTERM; killed")
	}
}

func (p *process) tail(n int) {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	fmt.Fprintf(os.Stderr, "---- last lines of %s (%s)\n%s\n", p.name, p.log, strings.Join(lines, "\n"))
}

// waitForApp polls until serve answers / with the built web app.
func waitForApp(h *harness, ctx context.Context, baseURL string, serve *process) {
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for {
		select {
		case <-serve.exited:
			serve.tail(40)
			h.Fatalf("swapmeet serve exited: %v", serve.err)
		case <-ctx.Done():
			h.Fatalf("interrupted")
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusOK && strings.Contains(string(body), `<div id="app">`):
				return
			case resp.StatusCode == http.StatusOK:
				h.Fatalf("%s serves no web app: build the binary with `make build`, which embeds it", baseURL)
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			serve.tail(40)
			h.Fatalf("swapmeet serve did not answer %s/ within 60s: %s", baseURL, last)
		}
		wait.Sleep(context.Background(), 100*time.Millisecond)
	}
}
